# fish completion for resident: the candidates come from resident itself, through
# System.CommandLine's [suggest:POSITION] directive (verbs, options, shells for shell-init);
# where it offers none (a program argument), fish completes file names.
# Install: copy to ~/.config/fish/completions/resident.fish.
function __resident_suggest
    set -l line (string replace -r '^\S+\s*' '' -- (commandline -cp))
    resident "[suggest:"(string length -- "$line")"]" "$line" 2>/dev/null
end
complete -c resident -a '(__resident_suggest)'
