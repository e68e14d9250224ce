// The pre-Go-runtime half of package nsenter; see nsenter.go for the steps.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAX_JOINS 16

static int sync_fd = -1;

static void send_frame(const char *json) {
	uint32_t len = (uint32_t)strlen(json);
	unsigned char hdr[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, (len >> 24) & 0xff};
	if (write(sync_fd, hdr, 4) != 4 || write(sync_fd, json, len) != (ssize_t)len)
		_exit(1);
}

// fail reports an error to the parent and exits.
static void fail(const char *fmt, ...) {
	char msg[512], json[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	// The message has no quotes or backslashes of its own but paths may;
	// replace them rather than escape.
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '?';
	snprintf(json, sizeof json, "{\"type\":\"pid\",\"error\":\"%s\"}", msg);
	if (sync_fd >= 0)
		send_frame(json);
	_exit(1);
}

// wait_ack reads one whole frame from the parent and ignores its content.
static void wait_ack(void) {
	unsigned char hdr[4];
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(sync_fd, hdr + got, 4 - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(1);
		}
		got += n;
	}
	uint32_t len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	char buf[256];
	while (len > 0) {
		ssize_t n = read(sync_fd, buf, len > sizeof buf ? sizeof buf : len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(1);
		}
		len -= n;
	}
}

struct join {
	int flag;
	int fd;
	char kind[16];
};

static int kind_flag(const char *kind) {
	if (!strcmp(kind, "user")) return CLONE_NEWUSER;
	if (!strcmp(kind, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(kind, "uts")) return CLONE_NEWUTS;
	if (!strcmp(kind, "net")) return CLONE_NEWNET;
	if (!strcmp(kind, "pid")) return CLONE_NEWPID;
	if (!strcmp(kind, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(kind, "time")) return CLONE_NEWTIME;
	if (!strcmp(kind, "mnt")) return CLONE_NEWNS;
	return 0;
}

// The order joins happen in: user first (it grants rights over the
// others), mnt last (it changes what later paths would mean).
static const int join_order[] = {CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET,
				 CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNS};

void berth_nsenter(void) {
	const char *req = getenv("_BERTH_NSENTER");
	if (!req)
		return;
	const char *fdenv = getenv("_BERTH_INIT_SYNC_FD");
	if (!fdenv)
		_exit(1);
	sync_fd = atoi(fdenv);

	struct join joins[MAX_JOINS];
	int njoins = 0;
	unsigned long long unshare_flags = 0;
	int fork_needed = 0;

	// Parse "join <kind> <path>\n" and "unshare <flags>\n" lines.
	const char *line = req;
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char buf[4096];
		if (n >= sizeof buf)
			fail("nsenter request line too long");
		memcpy(buf, line, n);
		buf[n] = 0;
		if (!strncmp(buf, "join ", 5)) {
			char *kind = buf + 5, *path = strchr(kind, ' ');
			if (!path || njoins == MAX_JOINS)
				fail("bad nsenter join line");
			*path++ = 0;
			int flag = kind_flag(kind);
			if (!flag)
				fail("unknown namespace kind %s", kind);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				fail("open %s namespace %s: %s", kind, path, strerror(errno));
			joins[njoins].flag = flag;
			joins[njoins].fd = fd;
			snprintf(joins[njoins].kind, sizeof joins[njoins].kind, "%.15s", kind);
			njoins++;
			if (flag == CLONE_NEWPID)
				fork_needed = 1;
		} else if (!strncmp(buf, "unshare ", 8)) {
			unshare_flags = strtoull(buf + 8, NULL, 10);
		} else if (n > 0) {
			fail("bad nsenter request line");
		}
		line = end ? end + 1 : line + n;
	}

	int joined_user = 0;
	for (size_t o = 0; o < sizeof join_order / sizeof join_order[0]; o++) {
		for (int i = 0; i < njoins; i++) {
			if (joins[i].flag != join_order[o])
				continue;
			if (setns(joins[i].fd, joins[i].flag) < 0)
				fail("setns %s: %s", joins[i].kind, strerror(errno));
			close(joins[i].fd);
			if (joins[i].flag == CLONE_NEWUSER)
				joined_user = 1;
		}
	}
	// As in a new user namespace (below), become root of a joined one: our
	// host uid is usually unmapped there, and files init makes with an
	// unmapped id fail (EOVERFLOW).
	if (joined_user && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		fail("become root in the joined user namespace: %s", strerror(errno));

	if (unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail("unshare user namespace: %s", strerror(errno));
		send_frame("{\"type\":\"maps\"}");
		wait_ack();
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			fail("become root in the new user namespace: %s", strerror(errno));
	}
	int rest = (int)(unshare_flags & ~(unsigned long long)(CLONE_NEWUSER | CLONE_NEWCGROUP | CLONE_NEWTIME));
	if (rest) {
		if (unshare(rest) < 0)
			fail("unshare namespaces 0x%x: %s", rest, strerror(errno));
		if (rest & CLONE_NEWPID)
			fork_needed = 1;
	}

	char json[128];
	if (fork_needed) {
		pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (child < 0)
			fail("fork into pid namespace: %s", strerror(errno));
		if (child > 0) {
			snprintf(json, sizeof json, "{\"type\":\"pid\",\"pid\":%d}", child);
			send_frame(json);
			_exit(0);
		}
		return;
	}
	snprintf(json, sizeof json, "{\"type\":\"pid\",\"pid\":%d}", getpid());
	send_frame(json);
}
