#!/usr/bin/env python3
"""Finishes and encrypts the HLS fixtures made by make.sh.

  hls_tool.py finish DIR SECONDS   adds WebVTT subtitle renditions (en, fr) and writes DIR/master.m3u8
  hls_tool.py finish-cmaf DIR SECONDS
                                   the same for the fMP4 asset, whose media time starts at 10 s: the cues are
                                   written on the media timeline (X-TIMESTAMP-MAP with a LOCAL of 10 s) and all
                                   but the last span a segment boundary, so they are repeated in two segments
  hls_tool.py join DIR SECONDS_A SECONDS_B
                                   joins the two halves of each rendition of DIR (a.m3u8 and b.m3u8, made from
                                   different sources whose timestamps both start at 1.4 s) into one index.m3u8
                                   with an EXT-X-DISCONTINUITY between them, adds subtitles whose local times
                                   restart after the discontinuity, and writes DIR/master.m3u8
  hls_tool.py encrypt CLEAR OUT    copies CLEAR to OUT with the video<N> and audio-<lang> renditions AES-128
                                   encrypted, TS or fMP4 (keys rotate every two segments; explicit IVs
                                   everywhere except TS audio-fr, which uses IVs derived from the media
                                   sequence number, so both paths are exercised); an fMP4 init section is
                                   encrypted with its first segment's key and IV
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


def write_subtitles(root, parts):
    """Writes subs-en and subs-fr. parts holds, for each discontinuity part, (seconds, mpegts, local,
    crossing): its length, the X-TIMESTAMP-MAP of its segments (local is the cue time at mpegts, in seconds)
    and whether its cues span segment boundaries (1.0 s to 2.5 s into each two-second slot) or not (0.25 s
    to 1.75 s). A cue is written in every segment it overlaps, as packagers do."""
    for lang, lines in CUES.items():
        folder = os.path.join(root, "subs-" + lang)
        os.makedirs(folder, exist_ok=True)
        playlist = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
                    "#EXT-X-PLAYLIST-TYPE:VOD"]
        number, line = 0, 0
        for p, (seconds, mpegts, local, crossing) in enumerate(parts):
            count = (seconds + 1) // 2
            if crossing:
                slots = [(k * 2 + 1.0, min(k * 2 + 2.5, seconds - 0.25)) for k in range(seconds // 2)]
            else:
                slots = [(k * 2 + 0.25, k * 2 + 1.75) for k in range(count)]
            cues = [(a, b, lines[(line + k) % len(lines)]) for k, (a, b) in enumerate(slots)]
            line += len(cues)
            if p > 0:
                playlist.append("#EXT-X-DISCONTINUITY")
            for k in range(count):
                start, end = k * 2, min(k * 2 + 2, seconds)
                body = ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:%s" % (mpegts, timestamp(local)), ""]
                for a, b, text in cues:
                    if a < end and b > start:
                        body += ["%s --> %s" % (timestamp(local + a), timestamp(local + b)), text, ""]
                with open(os.path.join(folder, "seg%03d.vtt" % number), "w", encoding="utf-8") as f:
                    f.write("\n".join(body))
                playlist += ["#EXTINF:%.6f," % (end - start), "seg%03d.vtt" % number]
                number += 1
        playlist.append("#EXT-X-ENDLIST")
        with open(os.path.join(folder, "index.m3u8"), "w", encoding="utf-8") as f:
            f.write("\n".join(playlist) + "\n")


def start_of(path):
    """The start time in seconds of a media file or playlist, as ffprobe reads it."""
    return float(ffprobe(path, "format=start_time")["format"]["start_time"])


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
    start = start_of(os.path.join(root, "video0", "seg000.ts"))
    write_subtitles(root, [(int(seconds), int(round(start * 90000)), 0.0, False)])
    write_master(root)


def finish_cmaf(root, seconds):
    start = start_of(os.path.join(root, "video0", "index.m3u8"))
    write_subtitles(root, [(int(seconds), int(round(start * 90000)), start, True)])
    write_master(root)


def join(root, seconds_a, seconds_b):
    starts = []
    for folder in sorted(os.listdir(root)):
        if not re.fullmatch(r"video\d+|audio-\w+", folder):
            continue
        halves = [open(os.path.join(root, folder, name), encoding="utf-8").read().splitlines()
                  for name in ("a.m3u8", "b.m3u8")]
        body = lambda lines: [l for l in lines if l.startswith("#EXTINF:") or (l and not l.startswith("#"))]
        target = max(int(l.split(":")[1]) for half in halves for l in half
                     if l.startswith("#EXT-X-TARGETDURATION:"))
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:%d" % target, "#EXT-X-MEDIA-SEQUENCE:0",
                 "#EXT-X-PLAYLIST-TYPE:VOD"]
        lines += body(halves[0]) + ["#EXT-X-DISCONTINUITY"] + body(halves[1]) + ["#EXT-X-ENDLIST"]
        with open(os.path.join(root, folder, "index.m3u8"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        if folder == "video0":
            firsts = [next(l for l in half if l and not l.startswith("#")) for half in halves]
            starts = [start_of(os.path.join(root, folder, first)) for first in firsts]
        for name in ("a.m3u8", "b.m3u8"):
            os.remove(os.path.join(root, folder, name))
    parts = [(int(seconds_a), int(round(starts[0] * 90000)), 0.0, False),
             (int(seconds_b), int(round(starts[1] * 90000)), 0.0, True)]
    write_subtitles(root, parts)
    write_master(root)


def write_master(root):
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


def openssl_encrypt(path, key_number, iv):
    subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", derive("key", key_number).hex(),
                    "-iv", iv.hex(), "-in", path, "-out", path + ".enc"], check=True)
    os.replace(path + ".enc", path)


def encrypt(clear, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(clear, out)
    os.makedirs(os.path.join(out, "keys"))
    used_keys = set()
    for folder in sorted(os.listdir(out)):
        if not re.fullmatch(r"video\d+|audio-\w+", folder):
            continue
        playlist = os.path.join(out, folder, "index.m3u8")
        source = open(playlist, encoding="utf-8").read().splitlines()
        # An fMP4 rendition's init section is encrypted too, with the first segment's key and IV: its
        # EXT-X-MAP moves after that EXT-X-KEY, which then applies to it (and an IV must then be explicit).
        pending_map = next((l for l in source if l.startswith("#EXT-X-MAP:")), None)
        explicit_iv = folder != "audio-fr" or pending_map is not None
        lines, index, written = [], 0, []
        for line in source:
            if line.startswith("#EXT-X-MAP:"):
                continue
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
                if pending_map is not None:
                    lines.append(pending_map)
                    init = re.search(r'URI="([^"]+)"', pending_map).group(1)
                    openssl_encrypt(os.path.join(out, folder, init), key_number, iv)
                    pending_map = None
                written.append((index, key_number, iv))
                index += 1
            elif line and not line.startswith("#"):
                seg_index, key_number, iv = written[-1]
                openssl_encrypt(os.path.join(out, folder, line), key_number, iv)
            lines.append(line)
        with open(playlist, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    for n in sorted(used_keys):
        with open(os.path.join(out, "keys", "k%d.key" % n), "wb") as f:
            f.write(derive("key", n))


if __name__ == "__main__":
    {"finish": finish, "finish-cmaf": finish_cmaf, "join": join, "encrypt": encrypt}[sys.argv[1]](*sys.argv[2:])
