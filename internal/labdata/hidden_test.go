package labdata

import (
	"testing"
)

// The inputs are bpftool 7.1's output of a lab guest with a program 318
// and a link 8 added (the hidden ones).
func TestDropHidden(t *testing.T) {
	hidden := map[uint32]string{318: "ki_hide", 8: "ki_hide"}
	for _, tc := range []struct {
		name    string
		drop    func([]byte, map[uint32]string) []byte
		in, out string
	}{
		{"json", DropJSON,
			`[{"id":317,"name":"ki_iter","map_ids":[318]},{"id":318,"name":"ki_hide"},{"id":319,"name":"ki_x"}]` + "\n",
			`[{"id":317,"name":"ki_iter","map_ids":[318]},{"id":319,"name":"ki_x"}]` + "\n"},
		{"json last", DropJSON, `[{"id":1},{"id":318}]`, `[{"id":1}]`},
		{"json only", DropJSON, `[{"id":318}]`, `[]`},
		{"json none", DropJSON, `[{"id":1},{"id":2}]`, `[{"id":1},{"id":2}]`},
		{"json not an array", DropJSON, `{"error":"x"}`, `{"error":"x"}`},
		{"text", DropText,
			"317: tracing  name ki_iter  tag a04f5eef06a7f555  gpl\n\tloaded_at 2026-12-02T14:33:19+0000  uid 0\n\tbtf_id 58\n" +
				"318: lsm  name ki_hide  tag 0123456789abcdef  gpl\n\tloaded_at 2026-12-02T14:33:19+0000  uid 0\n\tmap_ids 60\n\tpids workload(210)\n" +
				"319: sk_lookup  name ki_sk_lookup  tag 57cd311f2e27366b  gpl\n\tbtf_id 318\n",
			"317: tracing  name ki_iter  tag a04f5eef06a7f555  gpl\n\tloaded_at 2026-12-02T14:33:19+0000  uid 0\n\tbtf_id 58\n" +
				"319: sk_lookup  name ki_sk_lookup  tag 57cd311f2e27366b  gpl\n\tbtf_id 318\n"},
		{"text link", DropText,
			"7: netns  prog 316  \n\tnetns_ino 4026531840  attach_type sk_lookup  \n8: tracing  prog 318  \n\tprog_type lsm  attach_type lsm_mac  \n9: iter  prog 317  \n",
			"7: netns  prog 316  \n\tnetns_ino 4026531840  attach_type sk_lookup  \n9: iter  prog 317  \n"},
		{"btf text", DropBTFText,
			"30: name <anon>  size 854B  prog_ids 293\n61: name <anon>  size 900B  prog_ids 318  map_ids 60\n62: name <anon>  size 900B  prog_ids 3180,318,319\n",
			"30: name <anon>  size 854B  prog_ids 293\n61: name <anon>  size 900B  map_ids 60\n62: name <anon>  size 900B  prog_ids 3180,319\n"},
		{"btf json", DropBTFJSON,
			`[{"id":61,"prog_ids":[318],"map_ids":[60]},{"id":62,"prog_ids":[317,318]}]`,
			`[{"id":61,"map_ids":[60],"prog_ids":[]},{"id":62,"prog_ids":[317]}]`},
	} {
		if got := string(tc.drop([]byte(tc.in), hidden)); got != tc.out {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.out)
		}
		if got := string(tc.drop([]byte(tc.in), nil)); got != tc.in {
			t.Errorf("%s with nothing hidden changed its input: %q", tc.name, got)
		}
	}
}
