package btfload

import "testing"

// BenchmarkParse parses the running kernel's vmlinux BTF from bytes and
// resolves struct task_struct (decoding its closure).
func BenchmarkParse(b *testing.B) {
	s := liveSpec(b)
	raw := s.Raw()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAndTaskStruct(b *testing.B) {
	raw := liveSpec(b).Raw()
	for b.Loop() {
		s, err := Parse(raw, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Type("struct task_struct"); err != nil {
			b.Fatal(err)
		}
	}
}
