#!/bin/sh
# One voter of the majority vote in tasks.toml: answers "How many r's are in
# strawberry?" by method $1 and ends with "ANSWER: N". Two methods get it wrong, the
# way two of five model replies might; the same method always answers the same.
set -eu
word=strawberry
case $1 in
    grep) n=$(printf '%s\n' "$word" | grep -o r | wc -l) ;;
    tr) n=$(printf '%s' "$word" | tr -cd r | wc -c) ;;
    awk) n=$(printf '%s\n' "$word" | awk '{ print gsub(/r/, "") }') ;;
    uniq) n=$(printf '%s\n' "$word" | fold -w1 | uniq | grep -c r) ;;  # merges the "rr"
    guess) n=2 ;;                                                     # from memory
    *) echo "unknown method: $1" >&2; exit 2 ;;
esac
echo "counted by $1"
echo "ANSWER: $((n))"           # $((n)): wc pads its count with blanks on macOS
