// SPDX-License-Identifier: GPL-2.0
/*
 * kicrash: the lab's crash module, a small LKDTM (Debian's kernels have no
 * LKDTM). Writing a trigger's name to /sys/kernel/debug/kicrash/trigger
 * crashes the kernel that way:
 *
 *   panic          panic() in process context
 *   oops           a NULL pointer write in process context (page fault oops)
 *   bug            BUG() in process context (invalid opcode)
 *   warn           WARN() (panics with panic_on_warn)
 *   hardirq-panic  panic() in an hrtimer callback (hardirq context)
 *   hardirq-oops   a NULL pointer write in an hrtimer callback
 *   softirq-panic  panic() in a timer_list callback (softirq context)
 *   softirq-oops   a NULL pointer write in a timer_list callback
 *   stack          unbounded recursion into the vmap stack's guard page
 *                  (a double fault, handled on its IST stack)
 *   hung           sleep in TASK_UNINTERRUPTIBLE forever (a hung task)
 *
 * The timers are armed on the writer's CPU, and the writer spins in
 * kicrash_wait until they fire, so that the interrupt interrupts it (not
 * the idle task).
 */
#include <linux/module.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/timer.h>
#include <linux/delay.h>
#include <linux/sched.h>
#include <linux/uaccess.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kinspect lab: crash the kernel on demand");

static struct dentry *kicrash_dir;
/* volatile: the compiler must emit the NULL store, not a trap. */
static int *volatile kicrash_null;
static volatile int kicrash_fired;
static struct hrtimer kicrash_hrtimer;
static struct timer_list kicrash_timer;
static bool kicrash_oops_in_timer;

static noinline void kicrash_oops(void)
{
	*kicrash_null = 0x6b;
}

static noinline void kicrash_bug(void)
{
	BUG();
}

static noinline void kicrash_warn(void)
{
	WARN(1, "kicrash: warning\n");
}

/* Each frame holds a buffer the compiler cannot drop, and the recursion
 * is not a tail call: the stack grows until it hits the guard page. */
static noinline int kicrash_recurse(int depth)
{
	volatile char buf[256];

	buf[0] = depth;
	buf[sizeof(buf) - 1] = depth;
	return kicrash_recurse(depth + 1) + buf[0] + buf[sizeof(buf) - 1];
}

static noinline void kicrash_hang(void)
{
	for (;;) {
		set_current_state(TASK_UNINTERRUPTIBLE);
		schedule();
	}
}

/* The callbacks do something after kicrash_oops, which is then a call,
 * not a tail call: the callback stays on the stack. */
static enum hrtimer_restart kicrash_hrtimer_fn(struct hrtimer *t)
{
	kicrash_fired = 1;
	if (kicrash_oops_in_timer)
		kicrash_oops();
	else
		panic("kicrash: panic in hardirq (hrtimer callback)");
	kicrash_fired = 2;
	return HRTIMER_NORESTART;
}

static void kicrash_timer_fn(struct timer_list *t)
{
	kicrash_fired = 1;
	if (kicrash_oops_in_timer)
		kicrash_oops();
	else
		panic("kicrash: panic in softirq (timer_list callback)");
	kicrash_fired = 2;
}

/* Spin (preemptible, interrupts on) until a timer has fired. */
static noinline int kicrash_wait(void)
{
	int i;

	for (i = 0; i < 10000 && !kicrash_fired; i++)
		mdelay(1);
	return -ETIMEDOUT;
}

static int kicrash_hardirq(bool oops)
{
	kicrash_oops_in_timer = oops;
	hrtimer_init(&kicrash_hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	kicrash_hrtimer.function = kicrash_hrtimer_fn;
	hrtimer_start(&kicrash_hrtimer, ms_to_ktime(10), HRTIMER_MODE_REL_PINNED_HARD);
	return kicrash_wait();
}

static int kicrash_softirq(bool oops)
{
	kicrash_oops_in_timer = oops;
	timer_setup(&kicrash_timer, kicrash_timer_fn, TIMER_PINNED);
	mod_timer(&kicrash_timer, jiffies + msecs_to_jiffies(10));
	return kicrash_wait();
}

static ssize_t kicrash_write(struct file *f, const char __user *ubuf, size_t len, loff_t *off)
{
	char buf[32];
	size_t n = min(len, sizeof(buf) - 1);
	int err = 0;

	if (copy_from_user(buf, ubuf, n))
		return -EFAULT;
	buf[n] = 0;
	strim(buf);
	pr_emerg("kicrash: trigger %s on CPU %d, pid %d (%s)\n", buf,
		 raw_smp_processor_id(), current->pid, current->comm);
	if (!strcmp(buf, "panic"))
		panic("kicrash: panic in process context");
	else if (!strcmp(buf, "oops"))
		kicrash_oops();
	else if (!strcmp(buf, "bug"))
		kicrash_bug();
	else if (!strcmp(buf, "warn"))
		kicrash_warn();
	else if (!strcmp(buf, "stack"))
		err = kicrash_recurse(0);
	else if (!strcmp(buf, "hung"))
		kicrash_hang();
	else if (!strcmp(buf, "hardirq-panic"))
		err = kicrash_hardirq(false);
	else if (!strcmp(buf, "hardirq-oops"))
		err = kicrash_hardirq(true);
	else if (!strcmp(buf, "softirq-panic"))
		err = kicrash_softirq(false);
	else if (!strcmp(buf, "softirq-oops"))
		err = kicrash_softirq(true);
	else
		return -EINVAL;
	return err ? err : len;
}

static const struct file_operations kicrash_fops = {
	.owner = THIS_MODULE,
	.write = kicrash_write,
	.llseek = noop_llseek,
};

static int __init kicrash_init(void)
{
	kicrash_dir = debugfs_create_dir("kicrash", NULL);
	debugfs_create_file("trigger", 0200, kicrash_dir, NULL, &kicrash_fops);
	return 0;
}

static void __exit kicrash_exit(void)
{
	debugfs_remove_recursive(kicrash_dir);
	hrtimer_cancel(&kicrash_hrtimer);
	del_timer_sync(&kicrash_timer);
}

module_init(kicrash_init);
module_exit(kicrash_exit);
