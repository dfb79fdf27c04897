# Minimal --name value option parser (Kaldi's parse_options.sh, simplified): every
# "--foo_bar VALUE" sets the shell variable foo_bar, which must already exist. Usage errors exit 2.
# Sourced by every recipe's run.sh (recipes/*/run.sh), after its defaults.
while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      name=${1#--}; name=${name//-/_}
      if [ -z "${!name+x}" ]; then echo "$0: unknown option $1 (see the usage line at the top of $0)" >&2; exit 2; fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      printf -v "$name" '%s' "$2"; shift 2 ;;
    *) echo "$0: unexpected argument $1" >&2; exit 2 ;;
  esac
done
