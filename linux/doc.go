// Package linux walks the kernel's own data structures through the
// object engine (package objects), as drgn's helpers do: tasks
// (ForEachTask, ForEachProcess, ForEachThread, FindTask, CurrentTask,
// IdleTask, NewTask), modules and their symbols (ForEachModule,
// NewModule, AddModuleSymbols), the printk ring buffer
// (PrbForEachRecord, ReadPrintkRing), mounts and dentries (ForEachMount,
// DPath, ForEachDentryChild, FilePath, Mounts as /proc/mounts), a
// task's open files (ForEachFile, TaskFiles), its address space
// (ForEachVMA, TaskVMAs as /proc/PID/maps, ReadTaskVM), signals
// (ReadTaskSignals) and command line (ReadProcArgs, through its page
// tables: FollowPhys, ReadUser), the slab allocator (ForEachSlabCache,
// SlabInfos as /proc/slabinfo, SlabObjectInfo,
// SlabCacheForEachAllocatedObject), pages (NewPageInfo, PageSlab),
// /proc/meminfo (ReadMeminfo), vmalloc areas (VmapAreas, VmallocInfo),
// what an address is (IdentifyAddress), cgroups
// (CgroupForEachDescendantPre, CgroupPath), /proc/modules
// (ProcModules), the panicking CPU (PanicCPU), the timekeeper
// (Timekeeper, ReadClocks, RealMinusBoot), the uptime and load average
// (ReadUptime), the interrupts (ForEachIRQDesc, ReadInterrupts as
// /proc/interrupts), the pending timers (ReadTimers: hrtimers and the
// timer wheel), the runqueues (CPURQ, RunQueues, ReadRunQueue) and the
// device majors of /proc/devices (Devices).
//
// Walkers are named after the kernel macro or drgn helper they mirror and
// yield the kernel's objects as objects.Values; New<Type> decodes one
// into a Go model. Every layout decision is made from what BTF says the
// kernel has, newest first, with the commit that changed it.
//
// Errors wrap the engine's (objects.ErrNotFound, ErrCorrupt, ...) or the
// memory's, which name the address.
package linux
