#!/usr/bin/env bash
# scripts/images.sh — build the real guest software that v386's boot tests run.
#
# Everything comes from Debian 12 packages, fetched with `apt-get download` into .cache/debs/
# and unpacked with `dpkg -x` into .cache/extract/<package>/; none of them is installed and
# nothing here is committed (.cache is git-ignored). Only the tools that build the images
# (xorriso, mtools, cpio, dosfstools, fdisk, gzip, file) are installed with apt-get.
#
# Output, in .cache/images/:
#   bios.bin, vgabios-stdvga.bin  SeaBIOS and its VGA BIOS (package seabios)
#   memtest86+.bin                memtest86+ for ia32, a bzImage: -kernel, with
#                                 -append console=ttyS0,115200 for a copy of its screen on COM1
#   memtest86+.img                the same padded to a 1.44 MB boot floppy (-fda; screen only)
#   ipxe.lkrn                     iPXE as a Linux-style kernel (package ipxe)
#   vmlinuz                       the newest Debian 6.1 "686" i386 kernel (non-PAE)
#   initramfs.cpio.gz             static i386 busybox + tests/images/init: prints
#                                 "v386-initramfs: ready", then a shell (prompt "v386:/# ")
#                                 on ttyS0 and on tty1
#   linux.iso                     El Torito CD (isolinux) booting vmlinuz + the initramfs
#   linux.img                     hard disk: syslinux MBR, one FAT16 partition (syslinux)
#   VERSIONS                      the Debian package versions these were made from
# The kernel command line of both bootable images is
#   console=ttyS0,115200 console=tty0 cryptomgr.notests          (tests/images/syslinux.cfg)
#
# Why: these are the guests that show v386 is a PC: SeaBIOS, a bootloader, Linux and a
# shell. Any step whose output exists and is newer than its inputs (the .deb, the files in
# tests/images/, this script) is skipped, so a second run takes well under a second and
# needs no network. Delete .cache/debs to fetch the packages again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROOT=$PWD
CACHE=$ROOT/.cache
DEBS=$CACHE/debs
EXTRACT=$CACHE/extract
WORK=$CACHE/work
OUT=$CACHE/images
SRC=$ROOT/tests/images
SELF=$ROOT/scripts/images.sh

log() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when it exists (as scripts/setup.sh does).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        die "need root to run: $*"
    fi
}

# stale OUT IN... — true when OUT is missing or older than one of the INs.
stale() {
    local out=$1 in
    shift
    [ -e "$out" ] || return 0
    for in in "$@"; do [ "$in" -nt "$out" ] && return 0; done
    return 1
}

# --- apt ---------------------------------------------------------------------------------
apt_updated=0
apt_update() {
    [ "$apt_updated" -eq 1 ] && return 0
    log "apt-get update"
    # With i386 added, one i386 list (often bookworm-security's) may fail to download while
    # the main lists are fine: apt then exits 100. Carry on; whether the packages we need
    # can be downloaded is checked afterwards.
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 100 ]; then die "apt-get update failed with status $rc"; fi
    [ "$rc" -eq 100 ] && log "apt-get update reported status 100 (some list failed); continuing"
    apt_updated=1
}

# 1. The i386 architecture, so that apt knows busybox-static:i386 and the 686 kernel.
if ! dpkg --print-foreign-architectures | grep -qx i386; then
    log "dpkg --add-architecture i386"
    as_root dpkg --add-architecture i386
    apt_update
fi

# 2. Tools: "package:command".
tools=(xorriso:xorriso mtools:mcopy cpio:cpio dosfstools:mkfs.fat fdisk:sfdisk gzip:gzip file:file)
missing=()
for t in "${tools[@]}"; do
    command -v "${t#*:}" >/dev/null 2>&1 || missing+=("${t%%:*}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    install_tools() {
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}"
    }
    install_tools || { apt_update && install_tools; } || die "could not install ${missing[*]}"
fi

# 3. The packages. The kernel is the one the linux-image-686 metapackage points at, i.e. the
# newest linux-image-6.1.0-N-686 that apt knows; once its .deb is in .cache/debs that one
# is kept (and apt-cache, which takes a second or two here, is not asked again).
kernel_package() {
    apt-cache depends linux-image-686:i386 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-686\)\(:i386\)\?$/\1/p' | head -n1
}
kernel_pkg=
for f in "$DEBS"/linux-image-6.1.0-*-686_*_i386.deb; do
    [ -e "$f" ] && kernel_pkg=$(basename "${f%%_*}")
done
[ -n "$kernel_pkg" ] || kernel_pkg=$(kernel_package)
if [ -z "$kernel_pkg" ]; then
    apt_update
    kernel_pkg=$(kernel_package)
    [ -n "$kernel_pkg" ] || die "apt does not know linux-image-686:i386 (is the i386 list there?)"
fi

# "package:arch" (arch as apt-get download wants it; empty = the native or "all" one).
packages=(
    seabios:
    memtest86+:
    "$kernel_pkg:i386"
    busybox-static:i386
    syslinux:
    isolinux:
    syslinux-common:
    grub-pc-bin:
    ipxe:
)

# deb_of PACKAGE — the cached .deb of PACKAGE (apt-get download names it name_version_arch).
deb_of() {
    local f
    for f in "$DEBS/$1"_*.deb; do
        [ -e "$f" ] && { printf '%s\n' "$f"; return 0; }
    done
    return 1
}

mkdir -p "$DEBS" "$EXTRACT" "$WORK" "$OUT"
fetch=()
for p in "${packages[@]}"; do
    deb_of "${p%%:*}" >/dev/null || fetch+=("${p%:}")
done
if [ "${#fetch[@]}" -gt 0 ]; then
    # Are they downloadable with the lists we have? If not, update them and ask again.
    unknown() {
        local p
        for p in "${fetch[@]}"; do
            # (no `| grep -q`: with pipefail its early exit would fail the pipeline)
            [[ "$(apt-cache policy "$p" 2>/dev/null)" == *"Candidate: "[!\(]* ]] || printf '%s ' "$p"
        done
    }
    [ -z "$(unknown)" ] || apt_update
    u=$(unknown)
    [ -z "$u" ] || die "not downloadable from the apt sources: $u"
    log "apt-get download ${fetch[*]}"
    # As root, apt's sandbox user (_apt) may not reach .cache/debs: download as root.
    download() { (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "${fetch[@]}"); }
    download || { apt_update && download; } || die "apt-get download failed"
    for p in "${fetch[@]}"; do deb_of "${p%%:*}" >/dev/null || die "no .deb for $p after download"; done
fi

# extract PACKAGE [TAR-MEMBER...] — unpack its .deb into .cache/extract/PACKAGE/, once per
# .deb. Members limit what is unpacked (the kernel: only ./boot/, not 180 MB of modules).
extract() {
    local pkg=$1 dir=$EXTRACT/$1 deb
    shift
    deb=$(deb_of "$pkg")
    stale "$dir/.stamp" "$deb" || return 0
    log "extract $(basename "$deb")"
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$#" -gt 0 ]; then
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" "$@"
    else
        dpkg -x "$deb" "$dir"
    fi
    dpkg-deb -f "$deb" Package Version Architecture | paste -sd' ' | sed 's/[A-Za-z]*: //g' >"$dir/.version"
    touch "$dir/.stamp"
}
for p in "${packages[@]}"; do
    p=${p%%:*}
    if [ "$p" = "$kernel_pkg" ]; then extract "$p" ./boot/; else extract "$p"; fi
done
# Extractions of older kernels are left from earlier runs; their .debs are not needed.
for d in "$EXTRACT"/linux-image-*; do
    [ "$d" = "$EXTRACT/$kernel_pkg" ] || rm -rf "$d"
done
for f in "$DEBS"/linux-image-*.deb; do
    case $f in "$DEBS/${kernel_pkg}"_*) ;; *) rm -f "$f" ;; esac
done

# install_file SRC DST STAMP — copy SRC to DST when DST is older than STAMP (the package's
# extraction stamp: the files themselves keep the package's old timestamps).
install_file() {
    [ -f "$1" ] || die "missing $1"
    if stale "$2" "$3" "$SELF"; then
        log "copy $(basename "$2")"
        cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
    fi
}
X=$EXTRACT
install_file "$X/seabios/usr/share/seabios/bios.bin" "$OUT/bios.bin" "$X/seabios/.stamp"
install_file "$X/seabios/usr/share/seabios/vgabios-stdvga.bin" "$OUT/vgabios-stdvga.bin" "$X/seabios/.stamp"
install_file "$X/memtest86+/boot/memtest86+ia32.bin" "$OUT/memtest86+.bin" "$X/memtest86+/.stamp"
install_file "$X/ipxe/boot/ipxe.lkrn" "$OUT/ipxe.lkrn" "$X/ipxe/.stamp"
# memtest86+.bin starts with a floppy boot sector: padded to 1.44 MB it is a boot floppy.
floppy=$OUT/memtest86+.img
if stale "$floppy" "$OUT/memtest86+.bin" "$SELF"; then
    log "build memtest86+.img"
    cp "$OUT/memtest86+.bin" "$floppy.tmp"
    truncate -s 1474560 "$floppy.tmp"
    mv "$floppy.tmp" "$floppy"
fi
vmlinuz=$(find "$X/$kernel_pkg/boot" -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kernel_pkg"
install_file "$vmlinuz" "$OUT/vmlinuz" "$X/$kernel_pkg/.stamp"

# --- 4. initramfs.cpio.gz -----------------------------------------------------------------
# newc_node NAME MODE MAJOR MINOR INO — one newc cpio header (no data), padded to 4 bytes.
# Used for /dev/console, which must exist before /init runs (the kernel opens it for init's
# stdin/stdout/stderr) but cannot be made without root by mknod; this keeps it root-free.
newc_node() {
    local name=$1 namesize=$((${#1} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$5" "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
    printf '%s\0' "$name"
    head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

busybox=$X/busybox-static/bin/busybox
initramfs=$OUT/initramfs.cpio.gz
if stale "$initramfs" "$X/busybox-static/.stamp" "$SRC/init" "$SELF"; then
    log "build initramfs.cpio.gz"
    kind=$(file -b "$busybox")
    [[ "$kind" == "ELF 32-bit LSB executable, Intel 80386"*"statically linked"* ]] ||
        die "$busybox is not a static i386 executable: $kind"
    stage=$WORK/initramfs
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
    cp "$busybox" "$stage/bin/busybox"
    cp "$SRC/init" "$stage/init"
    chmod 755 "$stage/init" "$stage/bin/busybox"
    find "$stage" -exec touch -h -d @0 {} + # reproducible archive
    {
        (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
            cpio -o -H newc -R 0:0 --reproducible --quiet)
        # A second archive right after the first: the kernel unpacks both.
        newc_node dev/console $((0020600)) 5 1 900001
        newc_node TRAILER!!! 0 0 0 0
    } | gzip -9n >"$initramfs.tmp"
    mv "$initramfs.tmp" "$initramfs"
fi

# --- 5. linux.iso and linux.img --------------------------------------------------------------
isolinux=$X/isolinux/usr/lib/ISOLINUX
bios_modules=$X/syslinux-common/usr/lib/syslinux/modules/bios
boot_inputs=("$OUT/vmlinuz" "$initramfs" "$SRC/syslinux.cfg" "$SELF"
    "$X/isolinux/.stamp" "$X/syslinux-common/.stamp" "$X/syslinux/.stamp")

iso=$OUT/linux.iso
if stale "$iso" "${boot_inputs[@]}"; then
    log "build linux.iso"
    tree=$WORK/iso
    rm -rf "$tree"
    mkdir -p "$tree/isolinux"
    cp "$isolinux/isolinux.bin" "$bios_modules/ldlinux.c32" "$tree/isolinux/"
    cp "$SRC/syslinux.cfg" "$tree/isolinux/isolinux.cfg"
    cp "$OUT/vmlinuz" "$tree/vmlinuz"
    cp "$initramfs" "$tree/initrd.gz"
    # isohdpfx.bin makes it "isohybrid": the same file also boots as a hard disk.
    # (xorriso prints its banner on stderr even with -quiet: show stderr only on failure)
    xorriso -as mkisofs -quiet -o "$iso.tmp" -V V386_LINUX -R -J \
        -b isolinux/isolinux.bin -c isolinux/boot.cat \
        -no-emul-boot -boot-load-size 4 -boot-info-table \
        -isohybrid-mbr "$isolinux/isohdpfx.bin" "$tree" 2>"$WORK/xorriso.log" ||
        { cat "$WORK/xorriso.log" >&2; die "xorriso failed"; }
    mv "$iso.tmp" "$iso"
fi

# The disk: sector 0 is syslinux's MBR with one bootable FAT16 partition from sector 2048
# (1 MiB) to the end. The partition is made as its own file (mkfs.fat, mtools, and the
# mtools-based syslinux installer need no loop device or mount), then written into place.
img=$OUT/linux.img
if stale "$img" "${boot_inputs[@]}"; then
    log "build linux.img"
    payload=$(($(stat -c %s "$OUT/vmlinuz") + $(stat -c %s "$initramfs")))
    disk_mib=$((payload / 1048576 + 8))
    [ "$disk_mib" -ge 32 ] || disk_mib=32
    part=$WORK/part.img
    rm -f "$part" "$img.tmp"
    truncate -s $(((disk_mib - 1) * 1048576)) "$part"
    # -h 2048: the hidden-sectors field, the partition's first LBA, used by the boot sector.
    mkfs.fat -F 16 -n V386LINUX -h 2048 -i 38600386 "$part" >/dev/null
    export MTOOLS_SKIP_CHECK=1
    mcopy -i "$part" "$OUT/vmlinuz" ::/vmlinuz
    mcopy -i "$part" "$initramfs" ::/initrd.gz
    mcopy -i "$part" "$SRC/syslinux.cfg" ::/syslinux.cfg
    "$X/syslinux/usr/bin/syslinux" --install "$part"
    truncate -s $((disk_mib * 1048576)) "$img.tmp"
    printf 'label: dos\nlabel-id: 0x38600386\nstart=2048, type=e, bootable\n' |
        sfdisk --quiet --no-reread --no-tell-kernel "$img.tmp" >/dev/null
    dd if="$X/syslinux-common/usr/lib/syslinux/mbr/mbr.bin" of="$img.tmp" bs=440 count=1 \
        conv=notrunc status=none
    dd if="$part" of="$img.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -f "$part"
    mv "$img.tmp" "$img"
fi

# --- VERSIONS and the summary --------------------------------------------------------------
versions=$OUT/VERSIONS
{
    echo "# Debian packages that .cache/images was built from (scripts/images.sh)"
    for p in "${packages[@]}"; do cat "$EXTRACT/${p%%:*}/.version"; done
} >"$versions.tmp"
if cmp -s "$versions.tmp" "$versions"; then rm -f "$versions.tmp"; else mv "$versions.tmp" "$versions"; fi

for a in bios.bin vgabios-stdvga.bin memtest86+.bin memtest86+.img ipxe.lkrn vmlinuz initramfs.cpio.gz \
    linux.iso linux.img VERSIONS; do
    printf 'images: %-40s %10d bytes\n' "${OUT#"$ROOT"/}/$a" "$(stat -c %s "$OUT/$a")"
done
