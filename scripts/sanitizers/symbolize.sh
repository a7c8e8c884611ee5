#!/usr/bin/env bash
# symbolize.sh: a filter (stdin to stdout) that names the frames of sanitizer reports which the
# sanitizers left unsymbolized.
#
# scripts/test.sh runs its sanitized tests with symbolize=0: otherwise every leak check (at each
# process's exit, also when every leak it finds is suppressed) names the frames of each leak, and
# the first name asked for loads the debugging data of every library in the process (the C
# library's from libc6-dbg too): 0.1 to 0.2 s of CPU time per process, a fifth of the sanitized
# tests' CPU time (session 26). Their reports then give each frame as
#     #1 0x5654829e62c0  (/path/to/program+0x12c0)
# and this filter, through which the tests' output passes, turns such a line into
#     #1 0x5654829e62c0 in main /path/to/bad.cpp:8 (/path/to/program+0x12c0)
# with addr2line (binutils, there with the compiler), as llvm-symbolizer would; inlined frames
# follow on lines of their own. Other lines pass unchanged, at once (line by line, no buffering).
# Only a report's lines cost anything.
set -euo pipefail
exec perl -e '
  $| = 1;
  while (my $line = <STDIN>) {
    if ($line =~ /^( *)#(\d+) (0x[0-9a-f]+) +\(([^()+ ]+)\+(0x[0-9a-f]+)\)$/) {
      my ($indent, $number, $pc, $module, $offset) = ($1, $2, $3, $4, $5);
      # A return address (every frame but #0) points after its call: ask for the call itself.
      my $address = $number > 0 ? sprintf("0x%x", hex($offset) - 1) : $offset;
      my @answer = -r $module ? `addr2line -C -f -i -e \Q$module\E $address 2>/dev/null` : ();
      chomp @answer;
      if (@answer >= 2 && $answer[0] ne "??") {
        my @frames;
        for (my $i = 0; $i + 1 < @answer; $i += 2) {
          push @frames, "in $answer[$i] $answer[$i + 1]";
        }
        # addr2line -i names the innermost (inlined) function first, its callers after it.
        print "$indent#$number $pc $frames[0] ($module+$offset)\n";
        print "$indent#$number (inlined into) $_\n" for @frames[1 .. $#frames];
        next;
      }
    }
    print $line;
  }
'
