#!/usr/bin/env python3
"""Finishes and encrypts the HLS fixtures made by make.sh.

  hls_tool.py finish DIR SECONDS   adds WebVTT subtitle renditions (en, fr) and writes DIR/master.m3u8
  hls_tool.py encrypt CLEAR OUT    copies CLEAR to OUT with TS segments AES-128 encrypted (keys rotate every
                                   two segments; explicit IVs everywhere except audio-fr, which uses IVs
                                   derived from the media sequence number, so both paths are exercised)
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

CUES = {
    "en": ["First line of the sample.", "Second line of the sample.", "Third line of the sample.",
           "Fourth line of the sample.", "Fifth line of the sample.", "Sixth line of the sample."],
    "fr": ["Première ligne de l'exemple.", "Deuxième ligne de l'exemple.", "Troisième ligne de l'exemple.",
           "Quatrième ligne de l'exemple.", "Cinquième ligne de l'exemple.", "Sixième ligne de l'exemple."],
}
NAMES = {"en": "English", "fr": "Français"}
PROFILES = {"High": 0x64, "Main": 0x4D, "Baseline": 0x42, "Constrained Baseline": 0x42}


def ffprobe(path, entries):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries", entries, path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def timestamp(seconds):
    ms = int(round(seconds * 1000))
    return "%02d:%02d:%02d.%03d" % (ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)


def segments(playlist):
    """(duration, uri, byterange) for each segment of a media playlist written by ffmpeg."""
    out, duration, byterange = [], None, None
    for line in open(playlist, encoding="utf-8").read().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            byterange = line[17:]
        elif line and not line.startswith("#"):
            out.append((duration, line, byterange))
            byterange = None
    return out


def write_subtitles(root, seconds, mpegts):
    count = (seconds + 1) // 2
    for lang, lines in CUES.items():
        folder = os.path.join(root, "subs-" + lang)
        os.makedirs(folder, exist_ok=True)
        cues = [(k * 2 + 0.25, k * 2 + 1.75, lines[k % len(lines)]) for k in range(count)]
        playlist = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
                    "#EXT-X-PLAYLIST-TYPE:VOD"]
        for k in range(count):
            start, end = k * 2, min(k * 2 + 2, seconds)
            body = ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000" % mpegts, ""]
            for a, b, text in cues:
                if a < end and b > start:
                    body += ["%s --> %s" % (timestamp(a), timestamp(b)), text, ""]
            with open(os.path.join(folder, "seg%03d.vtt" % k), "w", encoding="utf-8") as f:
                f.write("\n".join(body))
            playlist += ["#EXTINF:%.6f," % (end - start), "seg%03d.vtt" % k]
        playlist.append("#EXT-X-ENDLIST")
        with open(os.path.join(folder, "index.m3u8"), "w", encoding="utf-8") as f:
            f.write("\n".join(playlist) + "\n")


def media_bytes(folder):
    """Peak and average bits per second of a rendition's segments."""
    peak, total, duration = 0, 0, 0.0
    for seg_duration, uri, byterange in segments(os.path.join(folder, "index.m3u8")):
        size = int(byterange.split("@")[0]) if byterange else os.path.getsize(os.path.join(folder, uri))
        peak = max(peak, size * 8 / seg_duration)
        total += size
        duration += seg_duration
    return int(peak), int(total * 8 / duration)


def finish(root, seconds):
    seconds = int(seconds)
    first = os.path.join(root, "video0", "seg000.ts")
    start = float(ffprobe(first, "format=start_time")["format"]["start_time"])
    write_subtitles(root, seconds, int(round(start * 90000)))
    audio_peak, audio_avg = media_bytes(os.path.join(root, "audio-en"))
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS", ""]
    for lang in ("en", "fr"):
        lines.append('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="%s",NAME="%s",DEFAULT=%s,'
                     'AUTOSELECT=YES,CHANNELS="2",URI="audio-%s/index.m3u8"'
                     % (lang, NAMES[lang], "YES" if lang == "en" else "NO", lang))
    for lang in ("en", "fr"):
        lines.append('#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="%s",NAME="%s",DEFAULT=NO,'
                     'AUTOSELECT=YES,FORCED=NO,URI="subs-%s/index.m3u8"' % (lang, NAMES[lang], lang))
    lines.append("")
    variants = sorted(d for d in os.listdir(root) if re.fullmatch(r"video\d+|fmp4|single", d))
    variants.sort(key=lambda d: (not d.startswith("video"), d))
    for folder in variants:
        path = os.path.join(root, folder)
        stream = ffprobe(os.path.join(path, "index.m3u8"), "stream=width,height,profile,level")["streams"][0]
        codec = "avc1.%02x00%02x" % (PROFILES.get(stream["profile"], 0x64), int(stream["level"]))
        peak, avg = media_bytes(path)
        lines.append("#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,RESOLUTION=%dx%d,"
                     'CODECS="%s,mp4a.40.2",FRAME-RATE=25.000,AUDIO="aud",SUBTITLES="subs"'
                     % (peak + audio_peak, avg + audio_avg, stream["width"], stream["height"], codec))
        lines.append(folder + "/index.m3u8")
    with open(os.path.join(root, "master.m3u8"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def derive(label, n):
    return hashlib.sha256(("stowage fixture %s %d" % (label, n)).encode()).digest()[:16]


def encrypt(clear, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(clear, out)
    os.makedirs(os.path.join(out, "keys"))
    used_keys = set()
    for folder in sorted(os.listdir(out)):
        if not re.fullmatch(r"video\d+|audio-\w+", folder):
            continue
        explicit_iv = folder != "audio-fr"
        playlist = os.path.join(out, folder, "index.m3u8")
        lines, index, written = [], 0, []
        for line in open(playlist, encoding="utf-8").read().splitlines():
            if line.startswith("#EXTINF:"):
                key_number = index // 2
                used_keys.add(key_number)
                tag = '#EXT-X-KEY:METHOD=AES-128,URI="../keys/k%d.key"' % key_number
                if explicit_iv:
                    iv = derive(folder + " iv", index)
                    tag += ",IV=0x" + iv.hex().upper()
                    lines.append(tag)
                elif index % 2 == 0:
                    iv = index.to_bytes(16, "big")
                    lines.append(tag)
                else:
                    iv = index.to_bytes(16, "big")
                written.append((index, key_number, iv))
                index += 1
            elif line and not line.startswith("#"):
                seg_index, key_number, iv = written[-1]
                path = os.path.join(out, folder, line)
                subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", derive("key", key_number).hex(),
                                "-iv", iv.hex(), "-in", path, "-out", path + ".enc"], check=True)
                os.replace(path + ".enc", path)
            lines.append(line)
        with open(playlist, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    for n in sorted(used_keys):
        with open(os.path.join(out, "keys", "k%d.key" % n), "wb") as f:
            f.write(derive("key", n))


if __name__ == "__main__":
    {"finish": finish, "encrypt": encrypt}[sys.argv[1]](*sys.argv[2:])
