#!/usr/bin/env bash
# Runs a program in a QEMU VM that has real V4L2 devices, which the host kernel lacks (../shared/TESTBED.md):
#   scripts/v4l2-vm.sh BINARY [ARGS...]
# The VM boots Debian 12's own kernel with the `vivid` test driver (/dev/video0-3, YUYV and many raw formats)
# and `v4l2loopback` (built here from Debian's dkms source against the matching headers: /dev/video4 and
# /dev/video5, fed with frames by the program itself). BINARY plus the libraries `ldd` names are packed into an
# initramfs with a static busybox; it runs as root with FACEGATE_V4L2_GUEST=1, its output comes on the console
# (this script's stdout), and the script exits with BINARY's exit status. Software emulation (TCG) by default:
# /dev/kvm may exist without working; FACEGATE_VM_ACCEL=kvm uses it.
# Everything downloaded or built is cached under $FACEGATE_CACHE/v4l2-vm (per kernel version), so only the
# first run on a machine downloads (~75 MB) and builds (~2 s); later runs boot in a few seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

if [ $# -lt 1 ]; then
  echo "usage: $0 BINARY [ARGS...]" >&2
  exit 2
fi
binary="$(realpath "$1")"
shift

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The kernel Debian 12 currently ships (the metapackage names it).
kver="$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)$/\1/p' | head -1)"
[ -n "$kver" ] || { echo "$0: cannot find Debian's current kernel (apt-get update?)" >&2; exit 1; }
cache="$FACEGATE_CACHE/v4l2-vm"
kit="$cache/kit-$kver"
if [ ! -f "$kit/.done" ]; then
  echo "== v4l2 vm kit for $kver" >&2
  rm -rf "$kit" && mkdir -p "$kit/debs" "$kit/root/modules"
  (cd "$kit/debs" && apt-get download -q "linux-image-$kver" v4l2loopback-dkms busybox-static 2>/dev/null)
  for deb in "$kit"/debs/*.deb; do dpkg-deb -x "$deb" "$kit/x"; done
  # The headers come from apt (their symlinks are absolute paths into /usr/src and /usr/lib/linux-kbuild-*).
  if [ ! -d "/usr/src/linux-headers-$kver" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "linux-headers-$kver" >/dev/null
  fi
  src="$(ls -d "$kit"/x/usr/src/v4l2loopback-*)"
  make -s -C "/usr/src/linux-headers-$kver" M="$src" KERNELRELEASE="$kver" modules >&2
  cp "$kit/x/boot/vmlinuz-$kver" "$kit/vmlinuz"
  cp "$kit/x/bin/busybox" "$kit/root/busybox"

  # Modules in load order (dependencies first), resolved from each module's own `depends=` field.
  declare -A path_of=() loaded=()
  while IFS= read -r f; do
    m="$(basename "$f" .ko)"
    path_of[${m//-/_}]="$f"
  done < <(find "$kit/x/lib/modules/$kver" "$src" -name '*.ko')
  order=()
  add() {
    local m="${1//-/_}" d
    [ -n "${loaded[$m]:-}" ] && return
    loaded[$m]=1
    [ -n "${path_of[$m]:-}" ] || { echo "$0: module $m not found" >&2; exit 1; }
    for d in $(grep -a -o 'depends=[^[:cntrl:]]*' "${path_of[$m]}" | head -1 | cut -d= -f2 | tr ',' ' '); do
      add "$d"
    done
    order+=("$m")
  }
  add vivid
  add v4l2loopback
  for m in "${order[@]}"; do cp "${path_of[$m]}" "$kit/root/modules/$m.ko"; done
  printf '%s\n' "${order[@]}" > "$kit/root/modules/order"
  rm -rf "$kit/x" "$kit/debs"
  touch "$kit/.done"
fi

# The initramfs: the kit, the program and its libraries, and an init that loads the modules and runs it.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
cp -a "$kit/root" "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
for applet in sh mount insmod rmmod sleep poweroff cat echo ls; do ln -s /busybox "$root/bin/$applet"; done
cp "$binary" "$root/probe"
ldd "$binary" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
{
  echo '#!/busybox sh'
  echo 'export PATH=/bin'
  echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp'
  echo 'for m in $(cat /modules/order); do'
  echo '  case $m in'
  echo '    vivid) insmod /modules/vivid.ko n_devs=1 ;;'
  echo '    v4l2loopback) insmod /modules/v4l2loopback.ko devices=2 video_nr=4,5 card_label=facegate-mjpeg,facegate-grey exclusive_caps=0 max_buffers=4 ;;'
  echo '    *) insmod /modules/$m.ko ;;'
  echo '  esac || echo "FACEGATE_VM: insmod $m failed"'
  echo 'done'
  printf 'FACEGATE_V4L2_GUEST=1 RUST_BACKTRACE=1 /probe'
  for a in "$@"; do printf ' %q' "$a"; done
  echo
  echo 'echo "FACEGATE_VM_EXIT=$?"'
  echo 'poweroff -f'
} > "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$work/initrd.cpio"

accel=(-accel tcg)
# /dev/kvm may exist without working (nested virtualisation): software emulation unless asked for.
[ "${FACEGATE_VM_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm)
timeout 300 qemu-system-x86_64 "${accel[@]}" -m 768 -smp 2 -nographic -no-reboot \
  -kernel "$kit/vmlinuz" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" | tee "$work/console" | tr -d '\r'
status="$(sed -n 's/^FACEGATE_VM_EXIT=\([0-9]*\).*/\1/p' "$work/console" | tail -1)"
[ -n "$status" ] || { echo "$0: the VM ended without the program's exit status" >&2; exit 1; }
exit "$status"
