#!/usr/bin/env bash
# Pack into .gpu/ (ignored by git) what benchmarks/gpu/device.sh needs on a lent GPU machine,
# which sees only the checkout (64 MiB with what is carried) and has no internet:
#
#   bash benchmarks/gpu/prepare.sh [../shared/data]
#
# - .gpu/data: the first pictures of each folder by name (the held-out last ones never go),
#   as many as fit beside the checkout: 150 photos, 150 Monet, 75 Van Gogh, 75 ukiyo-e.
# - .gpu/whl: the wheels the device's Python lacks (kornia), for Python 3.12.
#
# Then, with the device tool: run `bash benchmarks/gpu/device.sh` with carry [".gpu"].
set -euo pipefail
SOURCE=${1:-../shared/data}
rm -rf .gpu
mkdir -p .gpu/whl
take() {  # take FOLDER COUNT
    mkdir -p ".gpu/data/$1"
    find "$SOURCE/$1" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.png' \) | sort \
        | head -n "$2" | xargs -I{} cp {} ".gpu/data/$1/"
}
take photo 150
take monet 150
take vangogh 75
take ukiyoe 75
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/whl kornia==0.9.0 kornia_rs==0.2.0 >/dev/null
du -sh .gpu/data .gpu/whl
