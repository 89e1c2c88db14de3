# mounted filesystems of init's namespace (like mount)
from drgn.helpers.linux.fs import for_each_mount, mount_src, mount_dst, mount_fstype
print("MOUNT            SUPERBLK         TYPE       DEVNAME    DIRNAME")
for mnt in for_each_mount(prog):
    print(f"{mnt.value_():x} {mnt.mnt.mnt_sb.value_():x} {mount_fstype(mnt).decode():10} {mount_src(mnt).decode():10} {mount_dst(mnt).decode()}")
