#!/bin/sh
# The layering rule, checked on the sources (make test runs it first):
#   core   includes only core headers
#   proto  includes proto and core headers
#   tools  include only core headers
#   server includes server, proto and core headers
# and no two headers in core/ proto/ server/ tools/ share a name, so an
# include can only ever mean one file.  The build enforces the same with
# per-layer include paths; this check also catches a relative include
# ("../server/x.h") that a path would not stop, and names the line.
cd "$(dirname "$0")/.." || exit 1
bad=0
allowed() { # layer -> folders its quoted includes may name
  case "$1" in
  core) echo core ;;
  proto) echo "proto core" ;;
  tools) echo core ;;
  server) echo "server proto core" ;;
  esac
}
for layer in core proto tools server; do
  ok=$(allowed "$layer")
  for f in "$layer"/*.c "$layer"/*.h; do
    [ -f "$f" ] || continue
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
      inc=$(printf '%s' "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
      case "$inc" in
      */*) echo "check_layers: $f:${line%%:*}: include \"$inc\" names a path; include by name within the allowed layers"; echo x ;;
      *)
        found=""
        for d in $ok; do [ -f "$d/$inc" ] && found="$d"; done
        [ -n "$found" ] || { echo "check_layers: $f:${line%%:*}: \"$inc\" is not a header of ($ok): $layer may not include it"; echo x; }
        ;;
      esac
    done
  done
done >"${TMPDIR:-/tmp}/check_layers.$$"
grep -v '^x$' "${TMPDIR:-/tmp}/check_layers.$$"
grep -q '^x$' "${TMPDIR:-/tmp}/check_layers.$$" && bad=1
rm -f "${TMPDIR:-/tmp}/check_layers.$$"
dups=$(ls core/*.h proto/*.h server/*.h tools/*.h 2>/dev/null | xargs -n1 basename | sort | uniq -d)
if [ -n "$dups" ]; then
  for d in $dups; do echo "check_layers: header name used twice: $(ls core/$d proto/$d server/$d tools/$d 2>/dev/null | tr '\n' ' ')"; done
  bad=1
fi
n=$(ls core/*.[ch] proto/*.[ch] server/*.[ch] tools/*.[ch] 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || { echo "check_layers: no sources found"; exit 1; }
[ $bad -eq 0 ] && echo "check_layers: $n files, includes follow core <- proto <- server, core <- tools; header names unique"
exit $bad
