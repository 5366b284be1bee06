#!/bin/sh
# Installs the pyprime binary for this machine.
#
#   curl -LsSf https://github.com/pyprime/pyprime/releases/latest/download/install.sh | sh
#   wget -qO- https://github.com/pyprime/pyprime/releases/latest/download/install.sh | sh
#   curl -LsSf …/install.sh | sh -s -- --python 3.13 --modify-path
#
# Everything happens inside functions and the last line calls main, so a download cut
# short defines some functions at most and runs nothing.

# Where releases live; PYPRIME_DOWNLOAD_URL overrides it (mirrors, tests, pinned versions:
# https://github.com/pyprime/pyprime/releases/download/v0.1.0).
PYPRIME_DEFAULT_DOWNLOAD_URL="https://github.com/pyprime/pyprime/releases/latest/download"

usage() {
    cat <<'EOF'
pyprime installer

Usage: install.sh [options]
       curl -LsSf <url>/install.sh | sh -s -- [options]

Options:
  --python VERSION  after installing, run `pyprime install VERSION`
  --modify-path     add the install directory to PATH in ~/.profile
                    (and ~/.bashrc, ~/.zshrc when they exist)
  --no-verify       skip the SHA-256 check (not recommended)
  -q, --quiet       print nothing but errors
  -h, --help        show this help

Environment:
  PYPRIME_INSTALL_DIR   install here (default: $XDG_BIN_HOME, else ~/.local/bin)
  PYPRIME_DOWNLOAD_URL  download pyprime-<target> and SHA256SUMS from here
  PYPRIME_NO_VERIFY=1   same as --no-verify
  SSL_CERT_FILE         trust the CA certificates in this PEM file (curl --cacert,
                        wget --ca-certificate); SSL_CERT_DIR: a folder of them
EOF
}

say() {
    if [ "$QUIET" != 1 ]; then
        printf '%s\n' "$*"
    fi
}

warn() {
    printf 'warning: %s\n' "$*" >&2
}

err() {
    printf 'error: %s\n' "$*" >&2
}

die() {
    err "$@"
    exit 1
}

has() {
    command -v "$1" >/dev/null 2>&1
}

# Removes what this run created and has not moved into place; runs on every exit.
cleanup() {
    if [ -n "$STAGED" ]; then
        rm -f "$STAGED"
    fi
    if [ -n "$WORK_DIR" ]; then
        rm -rf "$WORK_DIR"
    fi
}

parse_args() {
    QUIET=0
    MODIFY_PATH=0
    PYTHON_VERSION=""
    NO_VERIFY=0
    if [ "${PYPRIME_NO_VERIFY:-}" = 1 ]; then
        NO_VERIFY=1
    fi
    while [ $# -gt 0 ]; do
        case $1 in
            -q | --quiet) QUIET=1 ;;
            --modify-path) MODIFY_PATH=1 ;;
            --no-modify-path) MODIFY_PATH=0 ;;
            --no-verify) NO_VERIFY=1 ;;
            --python)
                if [ $# -lt 2 ] || [ -z "$2" ]; then
                    usage_error "--python needs a version, e.g. --python 3.13"
                fi
                PYTHON_VERSION=$2
                shift
                ;;
            --python=*)
                PYTHON_VERSION=${1#--python=}
                if [ -z "$PYTHON_VERSION" ]; then
                    usage_error "--python needs a version, e.g. --python 3.13"
                fi
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) usage_error "unknown option '$1'" ;;
        esac
        shift
    done
}

usage_error() {
    err "$1"
    printf 'Run with --help to see the options.\n' >&2
    exit 2
}

# Prints musl, glibc or unknown.
detect_libc() {
    if has ldd; then
        ldd_version=$(ldd --version 2>&1)
        case $ldd_version in
            *musl*) echo musl && return ;;
            *GLIBC* | *"GNU libc"* | *"GNU C Library"*) echo glibc && return ;;
        esac
    fi
    for loader in /lib/ld-linux-* /lib64/ld-linux-* /lib/*-linux-gnu/ld-linux-*; do
        if [ -e "$loader" ]; then
            echo glibc
            return
        fi
    done
    for loader in /lib/ld-musl-*; do
        if [ -e "$loader" ]; then
            echo musl
            return
        fi
    done
    echo unknown
}

# Sets TARGET to the release name of this machine, e.g. x86_64-unknown-linux-gnu.
detect_target() {
    os=$(uname -s 2>/dev/null) || die "cannot run uname to detect the platform"
    arch=$(uname -m 2>/dev/null) || die "cannot run uname to detect the platform"
    case $arch in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) die "unsupported CPU architecture '$arch': pyprime ships binaries for x86_64 and aarch64" ;;
    esac
    case $os in
        Linux)
            case $(detect_libc) in
                musl) die "this Linux uses musl libc (Alpine?): pyprime binaries need glibc; use a glibc distribution or run from source with deno" ;;
                unknown) warn "cannot tell which C library this Linux uses; assuming glibc" ;;
            esac
            TARGET="$arch-unknown-linux-gnu"
            ;;
        Darwin)
            # A shell under Rosetta reports x86_64 on Apple silicon; the native binary is better.
            if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null)" = 1 ]; then
                arch=aarch64
            fi
            TARGET="$arch-apple-darwin"
            ;;
        *) die "unsupported operating system '$os': pyprime ships binaries for Linux and macOS" ;;
    esac
}

# Sets DOWNLOAD_URL; plain http only for loopback, so a release cannot be swapped in transit.
resolve_download_url() {
    DOWNLOAD_URL=${PYPRIME_DOWNLOAD_URL:-$PYPRIME_DEFAULT_DOWNLOAD_URL}
    while :; do
        case $DOWNLOAD_URL in
            */) DOWNLOAD_URL=${DOWNLOAD_URL%/} ;;
            *) break ;;
        esac
    done
    case $DOWNLOAD_URL in
        https://*) ;;
        http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
        *) die "PYPRIME_DOWNLOAD_URL must be an https:// URL (got '$DOWNLOAD_URL')" ;;
    esac
}

pick_downloader() {
    if has curl; then
        DOWNLOADER=curl
    elif has wget; then
        DOWNLOADER=wget
    else
        die "neither curl nor wget is installed; install one of them and run this again"
    fi
    # busybox's wget has no --ca-certificate: it would fail on every download.
    if [ "$DOWNLOADER" = wget ] && [ -n "${SSL_CERT_FILE:-}${SSL_CERT_DIR:-}" ] &&
        ! wget --help 2>&1 | grep -q -e '--ca-certificate'; then
        die "this wget cannot use SSL_CERT_FILE/SSL_CERT_DIR (no --ca-certificate); install curl or GNU wget"
    fi
}

# download URL FILE
# SSL_CERT_FILE / SSL_CERT_DIR (an internal certificate authority) are passed on as
# curl --cacert/--capath or wget --ca-certificate/--ca-directory.
download() {
    dl_url=$1
    dl_file=$2
    shift 2
    case $DOWNLOADER in
        curl)
            case $dl_url in
                https://*) set -- --proto '=https' --tlsv1.2 ;;
            esac
            if [ -n "${SSL_CERT_FILE:-}" ]; then set -- "$@" --cacert "$SSL_CERT_FILE"; fi
            if [ -n "${SSL_CERT_DIR:-}" ]; then set -- "$@" --capath "$SSL_CERT_DIR"; fi
            curl "$@" -fsSL --retry 3 -o "$dl_file" "$dl_url"
            ;;
        wget)
            if [ -n "${SSL_CERT_FILE:-}" ]; then set -- "$@" "--ca-certificate=$SSL_CERT_FILE"; fi
            if [ -n "${SSL_CERT_DIR:-}" ]; then set -- "$@" "--ca-directory=$SSL_CERT_DIR"; fi
            wget -q "$@" -O "$dl_file" "$dl_url"
            ;;
    esac
}

fetch() {
    if ! download "$1" "$2"; then
        rm -f "$2"
        die "cannot download $1 (not found or network error)"
    fi
}

pick_checksum_tool() {
    CHECKSUM_TOOL=""
    if has sha256sum; then
        CHECKSUM_TOOL=sha256sum
    elif has shasum; then
        CHECKSUM_TOOL=shasum
    elif has openssl; then
        CHECKSUM_TOOL=openssl
    elif [ "$NO_VERIFY" != 1 ]; then
        die "cannot verify the download: none of sha256sum, shasum or openssl is installed (install one, or pass --no-verify to skip the check)"
    fi
}

# Prints the lowercase hex SHA-256 of FILE.
sha256_of() {
    case $CHECKSUM_TOOL in
        sha256sum) digest_line=$(sha256sum "$1") ;;
        shasum) digest_line=$(shasum -a 256 "$1") ;;
        openssl) digest_line=$(openssl dgst -sha256 "$1") ;;
    esac || return 1
    case $CHECKSUM_TOOL in
        openssl) digest=${digest_line##* } ;;
        *) digest=${digest_line%% *} ;;
    esac
    printf '%s\n' "$digest" | tr 'A-F' 'a-f'
}

# Prints the expected hash of NAME from the SHA256SUMS file SUMS.
expected_sha256() {
    while read -r sum_hash sum_name || [ -n "$sum_hash" ]; do
        # sha256sum -b writes "*name"; both mean the same file.
        if [ "${sum_name#\*}" = "$1" ]; then
            case $sum_hash in
                *[!0-9a-fA-F]*) return 1 ;;
            esac
            if [ ${#sum_hash} -ne 64 ]; then
                return 1
            fi
            printf '%s\n' "$sum_hash" | tr 'A-F' 'a-f'
            return 0
        fi
    done <"$2"
    return 1
}

resolve_install_dir() {
    if [ -n "${PYPRIME_INSTALL_DIR:-}" ]; then
        INSTALL_DIR=$PYPRIME_INSTALL_DIR
    elif [ -n "${XDG_BIN_HOME:-}" ]; then
        INSTALL_DIR=$XDG_BIN_HOME
    elif [ -n "${HOME:-}" ]; then
        INSTALL_DIR=$HOME/.local/bin
    else
        die "HOME is not set; set PYPRIME_INSTALL_DIR to choose where pyprime goes"
    fi
}

make_work_dir() {
    if has mktemp; then
        WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pyprime-install.XXXXXX") || WORK_DIR=""
    fi
    if [ -z "$WORK_DIR" ]; then
        WORK_DIR="${TMPDIR:-/tmp}/pyprime-install.$$"
        mkdir -m 700 "$WORK_DIR" || {
            WORK_DIR=""
            die "cannot create a temporary directory in ${TMPDIR:-/tmp}"
        }
    fi
}

# Downloads and verifies the binary into WORK_DIR; sets DOWNLOADED.
download_binary() {
    name="pyprime-$TARGET"
    DOWNLOADED="$WORK_DIR/$name"
    if [ "$NO_VERIFY" = 1 ]; then
        warn "not verifying the download's SHA-256 (--no-verify)"
    else
        fetch "$DOWNLOAD_URL/SHA256SUMS" "$WORK_DIR/SHA256SUMS"
        expected=$(expected_sha256 "$name" "$WORK_DIR/SHA256SUMS") ||
            die "$DOWNLOAD_URL/SHA256SUMS has no valid entry for $name"
    fi
    say "downloading $DOWNLOAD_URL/$name"
    fetch "$DOWNLOAD_URL/$name" "$DOWNLOADED"
    if [ ! -s "$DOWNLOADED" ]; then
        die "$DOWNLOAD_URL/$name is empty"
    fi
    if [ "$NO_VERIFY" != 1 ]; then
        actual=$(sha256_of "$DOWNLOADED") || die "cannot compute the SHA-256 of $name with $CHECKSUM_TOOL"
        if [ "$actual" != "$expected" ]; then
            die "checksum mismatch for $name: expected $expected, got $actual; nothing was installed"
        fi
    fi
}

# Moves the verified binary into INSTALL_DIR in one rename, so pyprime is never half there.
install_binary() {
    mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
    STAGED="$INSTALL_DIR/.pyprime.install.$$"
    cp "$DOWNLOADED" "$STAGED" || die "cannot write to $INSTALL_DIR"
    chmod 755 "$STAGED" || die "cannot make $STAGED executable"
    mv -f "$STAGED" "$INSTALL_DIR/pyprime" || die "cannot move pyprime into $INSTALL_DIR"
    STAGED=""
    say "installed pyprime to $INSTALL_DIR/pyprime"
}

on_path() {
    case ":${PATH:-}:" in
        *":$1:"*) return 0 ;;
        *) return 1 ;;
    esac
}

# The line that puts INSTALL_DIR on PATH, written with $HOME when it lives there.
path_line() {
    dir=$INSTALL_DIR
    if [ -n "${HOME:-}" ]; then
        case $dir in
            "$HOME"/*) dir="\$HOME/${dir#"$HOME"/}" ;;
        esac
    fi
    # The $PATH in the line is for the profile to expand, not for this script.
    # shellcheck disable=SC2016
    printf 'export PATH="%s:$PATH"\n' "$dir"
}

# add_path_line FILE: appends the PATH line unless FILE already has it.
add_path_line() {
    line=$(path_line)
    if [ -f "$1" ] && grep -qxF "$line" "$1"; then
        say "$1 already adds $INSTALL_DIR to PATH"
        return 0
    fi
    if printf '\n# added by the pyprime installer\n%s\n' "$line" >>"$1"; then
        say "added $INSTALL_DIR to PATH in $1"
    else
        warn "cannot write to $1; add this line yourself: $line"
    fi
}

setup_path() {
    if [ "$MODIFY_PATH" = 1 ]; then
        if [ -z "${HOME:-}" ]; then
            warn "HOME is not set; not modifying PATH"
            return
        fi
        add_path_line "$HOME/.profile"
        for rc in "$HOME/.bashrc" "$HOME/.zshrc"; do
            if [ -f "$rc" ]; then
                add_path_line "$rc"
            fi
        done
        if ! on_path "$INSTALL_DIR"; then
            say "restart your shell, or run: $(path_line)"
        fi
    elif ! on_path "$INSTALL_DIR"; then
        say ""
        say "$INSTALL_DIR is not on your PATH. Add it with:"
        say ""
        say "    $(path_line)"
        say ""
        say "(in ~/.profile or your shell's rc file), or rerun this installer with --modify-path."
    fi
}

install_python() {
    if [ -z "$PYTHON_VERSION" ]; then
        return 0
    fi
    say "running: pyprime install $PYTHON_VERSION"
    # stdin is the installer script itself under `curl | sh`: keep pyprime off it.
    if [ "$QUIET" = 1 ]; then
        "$INSTALL_DIR/pyprime" install "$PYTHON_VERSION" </dev/null >/dev/null
    else
        "$INSTALL_DIR/pyprime" install "$PYTHON_VERSION" </dev/null
    fi || die "pyprime was installed, but 'pyprime install $PYTHON_VERSION' failed"
}

main() {
    STAGED=""
    WORK_DIR=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    parse_args "$@"
    detect_target
    resolve_download_url
    pick_downloader
    pick_checksum_tool
    resolve_install_dir
    make_work_dir
    download_binary
    install_binary
    install_python
    setup_path
}

main "$@"
