# bash completion for berthctl (installed by make install). The candidates
# come from `berthctl __complete`: commands, -o values, and the IDs of the
# containers, pods and images on the endpoint the command line names.
_berthctl() {
	local cur words cword out IFS=$'\n'
	if declare -F _get_comp_words_by_ref >/dev/null; then
		_get_comp_words_by_ref -n : cur words cword # image refs hold colons
	else
		cur=${COMP_WORDS[COMP_CWORD]} words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	fi
	out=$("${words[0]}" __complete "${words[@]:1:cword}" 2>/dev/null) || return
	if [[ $out == ":files" ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$out" -- "$cur"))
	fi
	if declare -F __ltrim_colon_completions >/dev/null; then
		__ltrim_colon_completions "$cur"
	fi
}
complete -F _berthctl berthctl
