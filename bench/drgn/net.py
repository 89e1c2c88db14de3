# network namespaces, devices, and the sockets of the TCP/UDP/raw/unix tables (like net)
from drgn import container_of
from drgn.helpers.linux.net import for_each_net, for_each_netdev, netdev_name, sk_nulls_for_each
from drgn.helpers.linux.list import hlist_for_each_entry
from drgn.helpers.linux.tcp import sk_tcpstate
print("NET               INODE")
nets = list(for_each_net(prog))
for net in nets:
    print(f"{net.value_():x} {net.ns.inum.value_()}")
    for dev in for_each_netdev(net):
        print(f"  dev {dev.value_():x} {netdev_name(dev).decode()} ifindex {dev.ifindex.value_()}")
print("PROTO SOCK             STATE")
h = prog["tcp_hashinfo"]
for i in range(h.ehash_mask.value_() + 1):
    for sk in sk_nulls_for_each(h.ehash[i].chain):
        print(f"tcp   {sk.value_():x} {sk_tcpstate(sk)}")
lh = h.lhash2
for i in range(h.lhash2_mask.value_() + 1):
    for sk in sk_nulls_for_each(lh[i].nulls_head):
        print(f"tcp   {sk.value_():x} LISTEN")
u = prog["udp_table"]
for i in range(u.mask.value_() + 1):
    for sk in hlist_for_each_entry("struct sock", u.hash[i].head.address_of_(), "__sk_common.skc_node"):
        print(f"udp   {sk.value_():x}")
for name in ("raw_v4_hashinfo", "raw_v6_hashinfo"):
    r = prog[name]
    nulls = "nulls" in r.ht.type_.type.type_name()  # hlist_nulls_head from 6.2, hlist_head in 6.1
    for i in range(len(r.ht)):
        it = sk_nulls_for_each(r.ht[i]) if nulls else hlist_for_each_entry("struct sock", r.ht[i].address_of_(), "__sk_common.skc_node")
        for sk in it:
            print(f"raw   {sk.value_():x}")
for net in nets:
    ut = net.unx.table
    for i in range(2 * 256):  # 2 * UNIX_HASH_SIZE buckets (6.1)
        for sk in hlist_for_each_entry("struct sock", ut.buckets[i].address_of_(), "__sk_common.skc_node"):
            print(f"unix  {sk.value_():x}")
