#!/bin/sh
# One repository's search, as one fanout task: its matches (FILE:LINE:TEXT), then
# `[AOP:SUMMARY] N matches`, the line fanout shows for the task. Exits as the search
# did: 0 found, 1 nothing found, 2 could not search.
#   matches.sh rg|grep PATTERN REPOSITORY
set -eu
search=$1 pattern=$2 repository=$3
case $search in
    rg) flags=-n ;;   # rg searches folders by itself
    *) flags=-rn ;;
esac
# The search's exit status leaves the pipe on descriptor 4; its output goes on to awk,
# which counts the lines as they pass.
exec 3>&1
status=$({ { "$search" "$flags" -e "$pattern" -- "$repository" && echo 0 >&4 || echo $? >&4; } |
    awk '{ print } END { print "[AOP:SUMMARY] " NR " match" (NR == 1 ? "" : "es") }' >&3; } 4>&1)
exit "$status"
