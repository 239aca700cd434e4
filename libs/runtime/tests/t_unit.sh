# Pure functions: SHA-256 vectors, request parser, JSON writer.
. "$(dirname "$0")/lib.sh"
"$T/unit"
