# Shared set-up of the interop checks (`source`d by each run.sh after it sets `here`):
#   interop_setup NAME WORK_DIR_ARGUMENT PIP_PACKAGE...
# sets `root` (the repository), `work` (WORK_DIR/NAME, or a new temporary folder's), `venv` (the
# Python environment in ~/.cache/tumorscan-dicom-venv, created and given the packages) and
# `bin` (the tumorscan binary: $BIN, else built from the repository).
interop_setup() {
    local name=$1 argument=$2
    shift 2
    root=$(cd "$here/../.." && pwd)
    # Everything goes into a folder of its own under WORK_DIR, so nothing else there is touched.
    work=${argument:-$(mktemp -d)}/$name
    mkdir -p "$work"
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/tumorscan-dicom-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
    bin=${BIN:-}
    if [ -z "$bin" ]; then (cd "$root" && cargo build --release -q); bin="$root/target/release/tumorscan"; fi
}
