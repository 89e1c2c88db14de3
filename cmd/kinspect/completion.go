package main

import (
	"fmt"
	"slices"
	"strings"
)

// "kinspect completion bash|zsh|fish" prints a completion script. The
// scripts hold no list of their own: at each Tab they run "kinspect
// __complete" (complete.go) with the words of the line, which answers
// from the command tables, and from the kernel when the line has
// -c DUMP or --live.

func init() {
	register(&command{name: "completion", summary: "print a shell completion script (bash, zsh, fish)", run: runCompletion,
		help: completionHelp, syntax: "bash | zsh | fish"})
}

const completionHelp = `Usage: kinspect completion bash|zsh|fish

Prints a script that completes kinspect's command line in the shell:
commands, verbs, keywords (id, name, pinned, opcodes, format c, ...) and
options, from kinspect's own tables; with -c DUMP (or --live) on the
line, the dump's program, map, link, BTF and struct_ops ids and names,
and the PIDs of bt and ps, read from the dump ("kinspect -c DUMP prog
dump xlated id <Tab>" offers the dump's program ids).

  bash   source <(kinspect completion bash)           in ~/.bashrc, or
         kinspect completion bash > /etc/bash_completion.d/kinspect
  zsh    source <(kinspect completion zsh)            in ~/.zshrc after
         compinit, or kinspect completion zsh > "${fpath[1]}/_kinspect"
  fish   kinspect completion fish > ~/.config/fish/completions/kinspect.fish

At each Tab the script runs "kinspect __complete WORD...", which prints
the candidates, one a line ("WORD<tab>DESCRIPTION"), then ":1" when the
shell should complete a file name, else ":0".
`

var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

func runCompletion(e *env, args []string) error {
	if len(args) != 1 || completionScripts[args[0]] == "" {
		shells := make([]string, 0, len(completionScripts))
		for s := range completionScripts {
			shells = append(shells, s)
		}
		slices.Sort(shells)
		return fmt.Errorf("completion: want one of %s: %w", strings.Join(shells, ", "), errUsage)
	}
	fmt.Fprint(e.stdout, completionScripts[args[0]])
	return nil
}

const bashCompletion = `# bash completion for kinspect (kinspect completion bash)
# Install: source <(kinspect completion bash)   in ~/.bashrc
#     or:  kinspect completion bash > /etc/bash_completion.d/kinspect

_kinspect() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    local out
    out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
    local -a lines
    mapfile -t lines <<< "$out"
    local n=${#lines[@]}
    (( n > 0 )) || return 0
    local directive=${lines[n-1]#:}
    unset "lines[n-1]"
    # bash splits "--opt=value" at '=': complete the part after it.
    local eq=
    if [[ $cur == "=" ]]; then
        eq="="
        cur=
    elif [[ $prev == "=" ]]; then
        eq=x
    fi
    COMPREPLY=()
    local line word
    for line in "${lines[@]}"; do
        word=${line%%$'\t'*}
        if [[ -n $eq ]]; then
            word=${word#*=}
            [[ $eq == "=" ]] && word="=$word"
        fi
        COMPREPLY+=("$word")
    done
    if (( directive & 1 )); then
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
    return 0
}
complete -F _kinspect kinspect
`

const zshCompletion = `#compdef kinspect
# zsh completion for kinspect (kinspect completion zsh)
# Install: source <(kinspect completion zsh)   in ~/.zshrc, after compinit
#     or:  kinspect completion zsh > "${fpath[1]}/_kinspect"

_kinspect() {
    local out directive line word desc
    local -a lines cands
    out=$(${words[1]} __complete "${(@Q)words[2,CURRENT]}" 2>/dev/null) || return 1
    lines=("${(@f)out}")
    (( ${#lines} )) || return 1
    directive=${lines[-1]#:}
    lines[-1]=()
    for line in "${lines[@]}"; do
        word=${line%%$'\t'*}
        desc=
        [[ $line == *$'\t'* ]] && desc=${line#*$'\t'}
        word=${word//:/\\:}
        if [[ -n $desc ]]; then
            cands+=("$word:$desc")
        else
            cands+=("$word")
        fi
    done
    if (( directive & 1 )); then
        [[ $PREFIX == --*=* ]] && compset -P '*='
        _files
        return
    fi
    (( ${#cands} )) && _describe -t kinspect kinspect cands
}

if [[ $funcstack[1] == _kinspect ]]; then
    _kinspect "$@"
else
    compdef _kinspect kinspect
fi
`

const fishCompletion = `# fish completion for kinspect (kinspect completion fish)
# Install: kinspect completion fish > ~/.config/fish/completions/kinspect.fish
#     or:  kinspect completion fish | source

function __kinspect_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out (command $tokens[1] __complete $tokens[2..-1] $cur 2>/dev/null)
    or return
    set -q out[1]; or return
    set -l directive (string replace -- ':' '' $out[-1])
    set -e out[-1]
    for line in $out
        echo $line
    end
    if test (math "$directive % 2") -eq 1
        set -l prefix ''
        set -l path $cur
        if string match -qr -- '^--[^=]*=' $cur
            set prefix (string replace -r -- '=.*' '=' $cur)
            set path (string replace -r -- '^[^=]*=' '' $cur)
        end
        for f in (__fish_complete_path $path)
            echo $prefix$f
        end
    end
end

complete -c kinspect -f -a '(__kinspect_complete)'
`
