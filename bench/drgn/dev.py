# registered character and block majors, /proc/devices-like (like dev)
from drgn.helpers.linux.device import for_each_registered_chrdev, for_each_registered_blkdev
print("Character devices:")
for dev, count, name, _ in for_each_registered_chrdev(prog):
    print(f"{dev >> 20:3} {name.decode()}  ({count} minors)")
print("\nBlock devices:")
for major, name, _ in for_each_registered_blkdev(prog):
    print(f"{major:3} {name.decode()}")
