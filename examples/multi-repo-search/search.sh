#!/bin/sh
# Search many repositories at once: one task per folder under repos/, each printing
# its matches (FILE:LINE:TEXT) and ending with their count, which fanout shows as the
# repository's line; a verdict that tolerates a few that cannot be searched.
#   examples/multi-repo-search/search.sh [PATTERN]        (default: TODO)
#   fanout show last repos/billing                        (one repository's matches)
# The first run creates three tiny git-less "repositories" in repos/ beside this
# script. ripgrep (rg -n) is used when it is installed, else grep -rn. Both exit 1 when
# nothing matched, which --ok-exit 0,1 counts as success: only an error (exit 2:
# unreadable, vanished) fails a repository, and the run passes while at least half of
# them were searched. matches.sh is one repository's task.
# For your own clones, from the folder that holds them:
#   fanout run --glob '*/' --ok-exit 0,1 --strategy partial-success -- \
#       path/to/matches.sh rg PATTERN {}
set -eu
cd "$(dirname "$0")"
pattern=${1:-TODO}

if [ ! -d repos ]; then
    mkdir -p repos/billing/src repos/docs-site repos/scheduler/lib
    printf 'def charge(card):\n    pass  # TODO: retry\n\n\ndef refund(card):\n    pass  # TODO\n' \
        > repos/billing/src/charge.py
    printf '# Docs\n\nNothing left to do here.\n' > repos/docs-site/index.md
    printf 'queue = []  # TODO: bound the queue\n' > repos/scheduler/lib/queue.py
fi

search=grep
if command -v rg > /dev/null 2>&1; then
    search=rg
fi
exec fanout run --glob 'repos/*/' --ok-exit 0,1 --strategy partial-success \
    --min-success-ratio 0.5 -- ./matches.sh "$search" "$pattern" {}
