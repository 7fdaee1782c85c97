#!/bin/sh
# Runs one container detached from the node agent and records what the agent needs to find
# it again: its pid (the process group leader) and, once it ends, its exit code.
# It runs with a fixed environment: the container's variables reach only its command.
state="$1"
shift
echo $$ > "$state/pid"
trap ':' TERM INT HUP
"$@" </dev/null
code=$?
echo "$code" > "$state/exit"
