# bash completion for resident: the candidates come from resident itself, through
# System.CommandLine's [suggest:POSITION] directive (verbs, options, shells for shell-init);
# where it offers none (a program argument), file names are completed.
# Install: source it from ~/.bashrc, or copy it to /etc/bash_completion.d/resident.
_resident() {
    local line="${COMP_LINE#"${COMP_WORDS[0]}"}"
    line="${line# }"
    local point=$((COMP_POINT - ${#COMP_LINE} + ${#line}))
    ((point < 0)) && point=0
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${point}]" "${line}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
    if ((${#COMPREPLY[@]} == 0)); then
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}
complete -o filenames -F _resident resident
