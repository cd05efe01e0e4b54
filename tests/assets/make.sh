#!/usr/bin/env bash
# Regenerates the HLS fixtures from synthetic sources with ffmpeg, ffprobe, openssl and python3:
#   tests/assets/hls/clear/  a master with three H.264 TS variants, an fMP4 variant with EXT-X-MAP, a
#                            single-file byte-range variant, two AAC audio renditions (en, fr) and a WebVTT
#                            subtitle rendition, all in the clear;
#   tests/assets/hls/aes/    the same asset with the TS variants and the audio renditions AES-128 encrypted,
#                            keys rotating every two segments, explicit IVs; keys in aes/keys/;
#   tests/assets/hls/cmaf/   an fMP4 (CMAF) asset: one H.264 video rendition, AAC audio renditions (en, fr)
#                            all as fMP4 with an init section, media time (tfdt) starting at 10 s, and WebVTT
#                            subtitles whose cues span segment boundaries; cmaf-aes/ is its AES-128 copy;
#   tests/assets/hls/disc/   a TS asset made of two different sources (another test pattern, another size,
#                            timestamps restarting) joined by EXT-X-DISCONTINUITY in every rendition: video,
#                            audio (en, fr) and subtitles; disc-aes/ is its AES-128 copy;
#   crates/stowage/assets/demo/  the small clear asset the CLI's `demo` embeds (two variants, two audio
#                            languages, WebVTT subtitles); the demo encrypts it when it serves it.
# The output is deterministic for a given ffmpeg build (bit-exact encoders, fixed keys and IVs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

x264=(-c:v libx264 -preset veryfast -tune zerolatency -g 50 -keyint_min 50 -sc_threshold 0 -bf 0
      -flags +bitexact -fflags +bitexact -threads 1 -pix_fmt yuv420p)
aac=(-c:a aac -b:a 64k -ac 2 -ar 48000 -flags +bitexact -fflags +bitexact)
hls=(-f hls -hls_time 2 -hls_playlist_type vod -hls_list_size 0)

# make_asset DIR SECONDS "W:H:KBPS ..." FMP4(0|1) BYTERANGE(0|1)
make_asset() {
  local out=$1 seconds=$2 sizes=$3 fmp4=$4 byterange=$5
  rm -rf "$out"; mkdir -p "$out"
  local video="testsrc2=size=1280x720:rate=25:duration=$seconds"
  local i=0
  for spec in $sizes; do
    IFS=: read -r w h kbps <<<"$spec"
    mkdir -p "$out/video$i"
    ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$video" -an -vf "scale=$w:$h" "${x264[@]}" \
      -b:v "${kbps}k" -maxrate "${kbps}k" -bufsize "$((kbps * 2))k" "${hls[@]}" \
      -hls_segment_filename "$out/video$i/seg%03d.ts" "$out/video$i/index.m3u8"
    i=$((i + 1))
  done
  if [ "$fmp4" = 1 ]; then
    mkdir -p "$out/fmp4"
    ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$video" -an -vf scale=480:270 "${x264[@]}" \
      -b:v 250k -maxrate 250k -bufsize 500k "${hls[@]}" -hls_segment_type fmp4 \
      -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$out/fmp4/seg%03d.m4s" "$out/fmp4/index.m3u8"
  fi
  if [ "$byterange" = 1 ]; then
    mkdir -p "$out/single"
    ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$video" -an -vf scale=480:270 "${x264[@]}" \
      -b:v 250k -maxrate 250k -bufsize 500k "${hls[@]}" -hls_flags single_file \
      -hls_segment_filename "$out/single/video.ts" "$out/single/index.m3u8"
  fi
  local lang freq
  for lang in en fr; do
    [ "$lang" = en ] && freq=440 || freq=660
    mkdir -p "$out/audio-$lang"
    ffmpeg -nostdin -hide_banner -loglevel error \
      -f lavfi -i "sine=frequency=$freq:duration=$seconds:sample_rate=48000" -vn "${aac[@]}" \
      -metadata:s:a:0 language="$lang" "${hls[@]}" \
      -hls_segment_filename "$out/audio-$lang/seg%03d.ts" "$out/audio-$lang/index.m3u8"
  done
  python3 "$root/tests/assets/hls_tool.py" finish "$out" "$seconds"
}

# make_cmaf DIR SECONDS
make_cmaf() {
  local out=$1 seconds=$2 lang freq
  rm -rf "$out"; mkdir -p "$out/video0"
  # frag_discont puts the media time in each fragment's tfdt (as CMAF packagers do) rather than in an
  # empty edit of the init section's edit list.
  local fmp4=(-output_ts_offset 10 "${hls[@]}" -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4
              -hls_segment_options movflags=+frag_discont)
  ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=$seconds" \
    -an -vf scale=480:270 "${x264[@]}" -b:v 250k -maxrate 250k -bufsize 500k "${fmp4[@]}" \
    -hls_segment_filename "$out/video0/seg%03d.m4s" "$out/video0/index.m3u8"
  for lang in en fr; do
    [ "$lang" = en ] && freq=440 || freq=660
    mkdir -p "$out/audio-$lang"
    ffmpeg -nostdin -hide_banner -loglevel error \
      -f lavfi -i "sine=frequency=$freq:duration=$seconds:sample_rate=48000" -vn "${aac[@]}" "${fmp4[@]}" \
      -hls_segment_filename "$out/audio-$lang/seg%03d.m4s" "$out/audio-$lang/index.m3u8"
  done
  python3 "$root/tests/assets/hls_tool.py" finish-cmaf "$out" "$seconds"
}

# make_discontinuity DIR SECONDS_A SECONDS_B: the first part from testsrc2 at 320x180, the second from
# testsrc at 256x144; each part is encoded on its own, so its timestamps start again at 1.4 s, and the first
# packet of each stream of the second part carries the discontinuity indicator, as a splicer sets it (or
# ffmpeg's demuxer flags the PES cut by the jump in continuity counters as corrupt). The segments of the
# parts are named a000.ts... and b000.ts...
make_discontinuity() {
  local out=$1 a=$2 b=$3 lang freq part
  rm -rf "$out"; mkdir -p "$out/video0"
  for part in a b; do
    local video="testsrc2=size=1280x720:rate=25:duration=$a" scale=320:180 seconds=$a splice=()
    if [ "$part" = b ]; then
      video="testsrc=size=320x240:rate=25:duration=$b" scale=256:144 seconds=$b
      splice=(-hls_ts_options mpegts_flags=+initial_discontinuity)
    fi
    ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "$video" -an -vf "scale=$scale" "${x264[@]}" \
      -b:v 150k -maxrate 150k -bufsize 300k "${hls[@]}" "${splice[@]}" \
      -hls_segment_filename "$out/video0/$part%03d.ts" "$out/video0/$part.m3u8"
    for lang in en fr; do
      [ "$lang" = en ] && freq=440 || freq=660
      mkdir -p "$out/audio-$lang"
      ffmpeg -nostdin -hide_banner -loglevel error \
        -f lavfi -i "sine=frequency=$freq:duration=$seconds:sample_rate=48000" -vn "${aac[@]}" \
        "${hls[@]}" "${splice[@]}" -hls_segment_filename "$out/audio-$lang/$part%03d.ts" "$out/audio-$lang/$part.m3u8"
    done
  done
  python3 "$root/tests/assets/hls_tool.py" join "$out" "$a" "$b"
}

make_asset "$work/clear" 12 "320:180:150 480:270:300 640:360:500" 1 1
make_asset "$work/demo" 8 "256:144:100 426:240:200" 0 0
make_cmaf "$work/cmaf" 8
make_discontinuity "$work/disc" 6 4

rm -rf "$root/tests/assets/hls"
mkdir -p "$root/tests/assets/hls"
cp -r "$work/clear" "$root/tests/assets/hls/clear"
python3 "$root/tests/assets/hls_tool.py" encrypt "$root/tests/assets/hls/clear" "$root/tests/assets/hls/aes"
for asset in cmaf disc; do
  cp -r "$work/$asset" "$root/tests/assets/hls/$asset"
  python3 "$root/tests/assets/hls_tool.py" encrypt "$root/tests/assets/hls/$asset" "$root/tests/assets/hls/$asset-aes"
done

rm -rf "$root/crates/stowage/assets/demo"
mkdir -p "$root/crates/stowage/assets"
cp -r "$work/demo" "$root/crates/stowage/assets/demo"
du -sh "$root/tests/assets/hls" "$root/crates/stowage/assets/demo"
