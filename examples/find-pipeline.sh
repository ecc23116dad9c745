#!/bin/sh
# A find pipeline: `gzip -t` every .gz archive under a folder, one task per file,
# then one AOP block for an orchestrating agent to read: a line per archive
# (failures first), the details file, the verdict and STATUS success/partial/failure.
#   examples/find-pipeline.sh [DIR]
# Without DIR it checks .cache/find-pipeline/ (in the current folder), created on the
# first run with three samples: odd file names, and one archive that is broken.
# -print0 | -0 keeps every file name whole (spaces, quotes, even newlines).
set -eu
dir=${1:-.cache/find-pipeline}

if [ ! -d "$dir" ]; then
    mkdir -p "$dir/logs"
    printf 'first\n' | gzip > "$dir/logs/app 2026-11-21.log.gz"
    printf 'second\n' | gzip > "$dir/logs/it's fine.log.gz"
    printf 'not gzip\n' > "$dir/truncated.gz"
fi

# partial-success: the run passes while at least one archive is intact; STATUS says
# "partial" and the broken one is listed first. Use all-succeed to fail on any.
find "$dir" -type f -name '*.gz' -print0 |
    fanout run -0 --strategy partial-success --format aop -- 'gzip -t {} && echo intact'
