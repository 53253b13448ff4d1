# Sourced by the static-bundle scripts: compiles tools/bundle/icu_data_stub.c into $1 and sets ICU_LINK_FLAGS to
# the linker flags that swap Foundation's 34 MB ICU data for it (an empty ICU data package). SanaGraph formats
# nothing through ICU (dates go through strftime: SanaGraphKit's Timestamp), so the binaries behave the same.
icu_stub() {
    local out="$1" swift="${SWIFT:-swift}" static_dir icu_symbol
    static_dir="$(dirname "$(readlink -f "$(command -v "$swift")")")/../lib/swift_static/linux"
    icu_symbol=$(nm "$static_dir/lib_FoundationICU.a" 2>/dev/null | grep -o 'icudt[0-9]*_dat' | head -1)
    [ -n "$icu_symbol" ] || { echo "error: no ICU data symbol in $static_dir/lib_FoundationICU.a" >&2; return 1; }
    mkdir -p "$(dirname "$out")"
    cc -O2 -c -DICU_DATA_SYMBOL="$icu_symbol" tools/bundle/icu_data_stub.c -o "$out"
    ICU_LINK_FLAGS=(-Xlinker "$PWD/$out" -Xlinker "--wrap=$icu_symbol")
}
