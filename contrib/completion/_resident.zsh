# zsh completion for resident: the bash completion (resident.bash, next to this file) through
# zsh's bashcompinit, so both shells ask resident's [suggest:POSITION] directive the same way.
# Install: source it from ~/.zshrc after compinit.
autoload -U +X bashcompinit && bashcompinit
source "${${(%):-%x}:A:h}/resident.bash"
