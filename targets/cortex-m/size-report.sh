#!/usr/bin/env bash
# Flash and RAM use of a tern-firmware ELF, from its section and symbol tables
# (host GNU readelf reads ARM ELFs; llvm-readelf works too: READELF=llvm-readelf).
#
#   ./size-report.sh ELF [STACK_PEAK | LOG]
#
# STACK_PEAK is the run's stack_peak in bytes, or LOG a file holding the run's
# "tern-firmware: board=..." result line; without it the stack is left out of RAM.
set -euo pipefail

elf=${1:?usage: size-report.sh ELF [STACK_PEAK | LOG]}
readelf=${READELF:-readelf}

# Size in bytes of section $1 (0 if absent).
section_size() {
    local hex
    hex=$("$readelf" -S -W "$elf" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk -v name="$1" '$1 == name { print $5 }')
    echo $((16#${hex:-0}))
}

# Address of section $1.
section_addr() {
    "$readelf" -S -W "$elf" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk -v name="$1" '$1 == name { print "0x" $3 }'
}

# Size in bytes of the object symbol whose (mangled) name ends in $1 (0 if absent).
symbol_size() {
    local size
    size=$("$readelf" -s -W "$elf" | awk -v suffix="$1" '$4 == "OBJECT" && $8 ~ suffix "$" { print $3; exit }')
    echo $((${size:-0}))
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

vectors=$(section_size .vector_table)
text=$(section_size .text)
rodata=$(section_size .rodata)
data=$(section_size .data)
sgstubs=$(section_size .gnu.sgstubs)
tern_data=$(section_size .tern_data)
bss=$(section_size .bss)
uninit=$(section_size .uninit)
model=$(symbol_size 4data5MODEL)
images=$(symbol_size 4data6IMAGES)
labels=$(symbol_size 4data6LABELS)
arena=$(symbol_size 5ARENA)

stack=
if [ $# -ge 2 ]; then
    if [[ $2 =~ ^[0-9]+$ ]]; then
        stack=$2
    else
        stack=$(sed -n 's/.*tern-firmware: board=.* stack_peak=\([0-9]*\).*/\1/p' "$2" | tail -1)
        [ -n "$stack" ] || { echo "no result line with stack_peak in $2" >&2; exit 1; }
    fi
fi

code=$((vectors + text + rodata + data + sgstubs))
statics=$((data + bss + uninit))
printf '%s\n' "$elf"
printf 'flash, code and constants: %9d bytes (%s) = .vector_table %d + .text %d + .rodata %d + .data image %d + .gnu.sgstubs %d\n' \
    "$code" "$(kib "$code")" "$vectors" "$text" "$rodata" "$data" "$sgstubs"
printf 'flash, model and test set: %9d bytes (%s) = .tern_data at %s: model %d + images %d + labels %d (+ alignment)\n' \
    "$tern_data" "$(kib "$tern_data")" "$(section_addr .tern_data)" "$model" "$images" "$labels"
printf 'flash, total:              %9d bytes (%s)\n' "$((code + tern_data))" "$(kib $((code + tern_data)))"
printf 'RAM, statics:              %9d bytes (%s) = .data %d + .bss %d + .uninit %d; the arena is %d of them\n' \
    "$statics" "$(kib "$statics")" "$data" "$bss" "$uninit" "$arena"
if [ -n "$stack" ]; then
    printf 'RAM, stack peak:           %9d bytes (%s)\n' "$stack" "$(kib "$stack")"
    printf 'RAM, total:                %9d bytes (%s)\n' "$((statics + stack))" "$(kib $((statics + stack)))"
fi
