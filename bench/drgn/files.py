# a task's open files (like files PID)
import sys
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.fs import for_each_file, d_path, decode_file_type
t = find_task(prog, int(sys.argv[1]))
print(f"PID: {t.pid.value_()} TASK: {t.value_():x} COMMAND: {t.comm.string_().decode()}")
print("ROOT:", d_path(t.fs.root).decode(), " CWD:", d_path(t.fs.pwd).decode())
print(" FD  FILE             DENTRY           INODE            TYPE PATH")
for fd, f in for_each_file(t):
    ino = f.f_inode
    print(f"{fd:3} {f.value_():x} {f.f_path.dentry.value_():x} {ino.value_():x} {decode_file_type(ino.i_mode.value_()):4} {d_path(f.f_path).decode(errors='replace')}")
