#!/bin/sh
# A run worth looking at, then its report: 48 pretend test files on 4 slots, each
# sleeping a while; three fail (and fail again when retried), one hangs past the
# 1.5 s timeout (twice). `fanout report last` then writes the run's HTML page, whose
# first screen is examples/report/report.png (Chromium, 1200 x 760).
#   examples/report/demo.sh
# The run fails (fanout run exits 1), as it should: the script goes on to the report,
# whose path it prints last.
set -eu
fanout run -q -j 4 --retries 1 --retry-delay 300ms --timeout 1.5s -- \
    'sleep $(( ({} * 37) % 10 ))e-1
     case {} in
         13|26|39) echo "FAILED test_{}.py::test_case - AssertionError" >&2; exit 1;;
         20) sleep 5;;
     esac
     echo "test_{}.py: 12 passed"' ::: $(seq 1 48) || true
fanout report last
