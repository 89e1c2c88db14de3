package x86dis

// objdumpListing is binutils 2.40 objdump -D -b binary -m i386:x86-64
// --adjust-vma=0xffffffffc0000000 of a stream of encodings the kernel and
// its BPF JIT use (and a misaligned stretch, decoded as objdump does).
const objdumpListing = `
ffffffffc0000000:	f3 0f 1e fa          	endbr64
ffffffffc0000004:	0f 01 ca             	clac
ffffffffc0000007:	0f 01 cb             	stac
ffffffffc000000a:	48 d1 e7             	shl    %rdi
ffffffffc000000d:	48 d3 e7             	shl    %cl,%rdi
ffffffffc0000010:	f0 48 0f b1 37       	lock cmpxchg %rsi,(%rdi)
ffffffffc0000015:	00 48 87             	add    %cl,-0x79(%rax)
ffffffffc0000018:	37                   	(bad)
ffffffffc0000019:	00 ff                	add    %bh,%bh
ffffffffc000001b:	d0 ff                	sar    %bh
ffffffffc000001d:	e0 41                	loopne 0xffffffffc0000060
ffffffffc000001f:	ff e3                	jmp    *%rbx
ffffffffc0000021:	48 0f b7 47 10       	movzwq 0x10(%rdi),%rax
ffffffffc0000026:	48 63 ff             	movslq %edi,%rdi
ffffffffc0000029:	8b 04 20             	mov    (%rax,%riz,1),%eax
ffffffffc000002c:	8b 44 24 00          	mov    0x0(%rsp),%eax
ffffffffc0000030:	41 8b 04 24          	mov    (%r12),%eax
ffffffffc0000034:	48 8b 05 00 01 00 00 	mov    0x100(%rip),%rax        # 0xffffffffc000013b
ffffffffc000003b:	65 48 8b 04 25 28 00 	mov    %gs:0x28,%rax
ffffffffc0000042:	00 00 
ffffffffc0000044:	0f ae e8             	lfence
ffffffffc0000047:	0f ae f0             	mfence
ffffffffc000004a:	f3 90                	pause
ffffffffc000004c:	c3                   	ret
ffffffffc000004d:	e9 00 00 00 00       	jmp    0xffffffffc0000052
ffffffffc0000052:	0f 84 00 00 00 00    	je     0xffffffffc0000058
ffffffffc0000058:	48 c7 c0 ff ff ff ff 	mov    $0xffffffffffffffff,%rax
ffffffffc000005f:	66 c1 c7 08          	rol    $0x8,%di
ffffffffc0000063:	0f b7 ff             	movzwl %di,%edi
ffffffffc0000066:	0f cf                	bswap  %edi
ffffffffc0000068:	48 0f cf             	bswap  %rdi
ffffffffc000006b:	48 f7 f6             	div    %rsi
ffffffffc000006e:	48 99                	cqto
ffffffffc0000070:	48 f7 ef             	imul   %rdi
ffffffffc0000073:	48 0f af c6          	imul   %rsi,%rax
ffffffffc0000077:	48 ff c0             	inc    %rax
ffffffffc000007a:	41 ff 44 24 08       	incl   0x8(%r12)
ffffffffc000007f:	f6 47 08 01          	testb  $0x1,0x8(%rdi)
ffffffffc0000083:	66 81 7f 08 ff ff    	cmpw   $0xffff,0x8(%rdi)
ffffffffc0000089:	c7 45 00 00 00 00 00 	movl   $0x0,0x0(%rbp)
ffffffffc0000090:	48 c7 45 f8 ff ff ff 	movq   $0xffffffffffffffff,-0x8(%rbp)
ffffffffc0000097:	ff 
ffffffffc0000098:	0f 0b                	ud2
ffffffffc000009a:	cc                   	int3
ffffffffc000009b:	48 cb                	lretq
ffffffffc000009d:	cb                   	lret
ffffffffc000009e:	ca 08 00             	lret   $0x8
ffffffffc00000a1:	48 ca 08 00          	lretq  $0x8
`
