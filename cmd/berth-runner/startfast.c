// The fast path of `berth-runner start ID`, taken before the Go runtime
// starts. See startfast.go for why it exists.
//
// It does what libcontainer's Load, Status and Exec do for a container in
// the "created" state, and nothing else: it reads the state, checks that
// the init is alive (pid and start time), that the container is not
// paused and that the exec fifo exists, then opens the fifo, reads the
// init's byte and removes the fifo, which lets the init exec the user's
// process. Every other case (another command or flag, a missing or odd
// state, a dead or paused init, a running container, any error before the
// fifo is opened) returns without having changed anything, and the Go
// program handles it with its own messages. Once the fifo is open the
// start is committed, and the few errors left are reported here, in the
// same words and log format as the Go program's.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define DEFAULT_ROOT "/run/berth-runner"
#define STATE_MAX (4 << 20)

struct startargs {
	const char *root;
	const char *log;
	const char *logfmt;
	const char *id;
};

// parse_args accepts exactly [global flags] start ID, where the global
// flags are --root, --log and --log-format (as "--f v" or "--f=v"), the
// ones a CRI monitor or daemon passes. Anything else is the Go program's.
static int parse_args(int argc, char **argv, struct startargs *a)
{
	int i = 1;

	a->root = DEFAULT_ROOT;
	a->log = NULL;
	a->logfmt = "text";
	for (; i < argc && argv[i][0] == '-'; i++) {
		static const char *names[] = { "--root", "--log", "--log-format" };
		const char **dst[] = { &a->root, &a->log, &a->logfmt };
		int k, matched = 0;

		for (k = 0; k < 3 && !matched; k++) {
			size_t n = strlen(names[k]);

			if (strncmp(argv[i], names[k], n) != 0)
				continue;
			if (argv[i][n] == '=') {
				*dst[k] = argv[i] + n + 1;
				matched = 1;
			} else if (argv[i][n] == '\0' && i + 1 < argc) {
				*dst[k] = argv[++i];
				matched = 1;
			}
		}
		if (!matched)
			return -1;
	}
	if (i + 2 != argc || strcmp(argv[i], "start") != 0)
		return -1;
	a->id = argv[i + 1];
	if (strcmp(a->logfmt, "text") != 0 && strcmp(a->logfmt, "json") != 0 && a->logfmt[0] != '\0')
		return -1;
	if (a->log != NULL && a->log[0] == '\0')
		a->log = NULL;
	return 0;
}

// clean_root accepts an absolute root that filepath.Abs would leave as it
// is (but for a trailing slash) and that is not "/".
static int clean_root(const char *root)
{
	size_t n = strlen(root);

	if (root[0] != '/' || strstr(root, "//") || strstr(root, "/./") || strstr(root, "/../"))
		return -1;
	while (n > 0 && root[n - 1] == '/')
		n--;
	if (n == 0)
		return -1;
	if ((n >= 2 && strncmp(root + n - 2, "/.", 2) == 0) || (n >= 3 && strncmp(root + n - 3, "/..", 3) == 0))
		return -1;
	return 0;
}

// valid_id is libcontainer's validateID, minus the ids that name a
// directory other than a child of the root.
static int valid_id(const char *id)
{
	const char *p;

	if (id[0] == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (p = id; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

// read_small reads a whole regular file (at most max bytes) opened from
// dirfd, NUL-terminated. It returns NULL on any error or a larger file.
static char *read_small(int dirfd, const char *name, size_t max, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		return NULL;
	}
	// cgroup files say 0: leave room for them, and for a file that grows
	if ((size_t)st.st_size + 4096 < max)
		max = st.st_size + 4096;
	buf = malloc(max + 1);
	if (buf == NULL) {
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, max - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		got += n;
		if (got == max) {
			free(buf);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

// A minimal reader of the JSON that Go's encoder writes for libcontainer's
// State: it walks the top-level object, so that a key or string inside the
// container's config (an image's env, a label) can never be taken for one
// of the fields read here.
struct jscan {
	const char *p, *end;
};

static void js_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\t' || *s->p == '\r'))
		s->p++;
}

// js_string scans a string; with out, copies it if it has no escapes.
static int js_string(struct jscan *s, char *out, size_t outlen)
{
	const char *start;

	js_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return -1;
	start = ++s->p;
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\') {
			if (out)
				return -1;
			s->p++;
		}
		s->p++;
	}
	if (s->p >= s->end)
		return -1;
	if (out) {
		size_t n = s->p - start;

		if (n >= outlen)
			return -1;
		memcpy(out, start, n);
		out[n] = '\0';
	}
	s->p++;
	return 0;
}

static int js_skip(struct jscan *s, int depth);

static int js_skip_container(struct jscan *s, char open, char close, int depth)
{
	s->p++;
	js_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			if (js_string(s, NULL, 0) < 0)
				return -1;
			js_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -1;
			s->p++;
		}
		if (js_skip(s, depth + 1) < 0)
			return -1;
		js_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		return -1;
	}
}

// js_skip scans any value.
static int js_skip(struct jscan *s, int depth)
{
	if (depth > 64)
		return -1;
	js_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return js_string(s, NULL, 0);
	case '{':
		return js_skip_container(s, '{', '}', depth);
	case '[':
		return js_skip_container(s, '[', ']', depth);
	default:
		while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
		       *s->p != '\n' && *s->p != '\t' && *s->p != '\r')
			s->p++;
		return 0;
	}
}

// js_uint scans a non-negative integer.
static int js_uint(struct jscan *s, uint64_t *v)
{
	uint64_t n = 0;
	const char *start;

	js_ws(s);
	start = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*s->p - '0');
		s->p++;
	}
	if (s->p == start)
		return -1;
	*v = n;
	return 0;
}

struct state {
	uint64_t pid, start;
	int have_pid, have_start;
	char freezer_v1[4096], unified[4096];
};

// js_cgroup_paths reads the "cgroup_paths" object: subsystem -> path.
static int js_cgroup_paths(struct jscan *s, struct state *st)
{
	js_ws(s);
	if (s->p >= s->end || *s->p != '{')
		return -1;
	s->p++;
	js_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		char key[64];
		const char *kstart;

		js_ws(s);
		kstart = s->p;
		if (js_string(s, key, sizeof(key)) < 0) {
			// a key with escapes or a long one is none of ours
			s->p = kstart;
			if (js_string(s, NULL, 0) < 0)
				return -1;
			key[0] = '\x01';
			key[1] = '\0';
		}
		js_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return -1;
		s->p++;
		if (strcmp(key, "freezer") == 0) {
			if (js_string(s, st->freezer_v1, sizeof(st->freezer_v1)) < 0)
				return -1;
		} else if (key[0] == '\0') {
			if (js_string(s, st->unified, sizeof(st->unified)) < 0)
				return -1;
		} else if (js_skip(s, 1) < 0) {
			return -1;
		}
		js_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return 0;
		}
		return -1;
	}
}

static int parse_state(const char *buf, size_t len, struct state *st)
{
	struct jscan s = { buf, buf + len };

	memset(st, 0, sizeof(*st));
	js_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	for (;;) {
		char key[64];
		const char *kstart;

		js_ws(&s);
		kstart = s.p;
		if (js_string(&s, key, sizeof(key)) < 0) {
			s.p = kstart;
			if (js_string(&s, NULL, 0) < 0)
				return -1;
			key[0] = '\x01';
			key[1] = '\0';
		}
		js_ws(&s);
		if (s.p >= s.end || *s.p != ':')
			return -1;
		s.p++;
		if (strcmp(key, "init_process_pid") == 0) {
			if (js_uint(&s, &st->pid) < 0)
				return -1;
			st->have_pid = 1;
		} else if (strcmp(key, "init_process_start") == 0) {
			if (js_uint(&s, &st->start) < 0)
				return -1;
			st->have_start = 1;
		} else if (strcmp(key, "cgroup_paths") == 0) {
			if (js_cgroup_paths(&s, st) < 0)
				return -1;
		} else if (js_skip(&s, 1) < 0) {
			return -1;
		}
		js_ws(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			continue;
		}
		if (s.p < s.end && *s.p == '}')
			break;
		return -1;
	}
	if (!st->have_pid || !st->have_start || st->pid == 0 || st->pid > 0x7fffffff)
		return -1;
	return 0;
}

// init_alive is libcontainer's hasInit: the pid runs, with the start time
// recorded at create, and is neither a zombie nor dead.
static int init_alive(const struct state *st)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;
	unsigned long long start;

	snprintf(path, sizeof(path), "/proc/%llu/stat", (unsigned long long)st->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	// comm may hold spaces and parentheses: fields start after the last ')'
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return 0;
	// p is field 3 (state); the start time is field 22
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return 0;
		p++;
	}
	if (sscanf(p, "%llu", &start) != 1)
		return 0;
	return start == st->start;
}

// thawed reports that the container's freezer says THAWED (cgroup v1) or
// its cgroup.freeze says 0 (v2), as libcontainer would see it.
static int thawed(const struct state *st)
{
	struct statfs fs;
	const char *dir, *file, *want;
	char *val;
	int dfd, ok;

	if (statfs("/sys/fs/cgroup", &fs) < 0)
		return 0;
	if (fs.f_type == CGROUP2_SUPER_MAGIC) {
		dir = st->unified;
		file = "cgroup.freeze";
		want = "0";
	} else {
		dir = st->freezer_v1;
		file = "freezer.state";
		want = "THAWED";
	}
	if (dir[0] != '/')
		return 0;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	val = read_small(dfd, file, 4096, NULL);
	close(dfd);
	if (val == NULL)
		return 0;
	val[strcspn(val, "\n")] = '\0';
	ok = strcmp(val, want) == 0;
	free(val);
	return ok;
}

// report_error writes msg as the Go program's fatal() does: a logrus error
// line in the chosen format to the --log file, or to stderr, and the bare
// message on stderr as well when the log goes to a file.
static void report_error(const struct startargs *a, int logfd, const char *msg)
{
	char ts[40], line[8192], esc[4096];
	struct tm tm;
	time_t now = time(NULL);
	long off;
	size_t i, j = 0;
	int fd = logfd >= 0 ? logfd : STDERR_FILENO;

	localtime_r(&now, &tm);
	off = tm.tm_gmtoff;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (off == 0)
		strcat(ts, "Z");
	else
		snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), "%c%02ld:%02ld", off < 0 ? '-' : '+',
			 labs(off) / 3600, labs(off) % 3600 / 60);
	for (i = 0; msg[i] && j + 2 < sizeof(esc); i++) {
		if (msg[i] == '"' || msg[i] == '\\')
			esc[j++] = '\\';
		esc[j++] = msg[i];
	}
	esc[j] = '\0';
	if (strcmp(a->logfmt, "json") == 0)
		snprintf(line, sizeof(line), "{\"level\":\"error\",\"msg\":\"%s\",\"time\":\"%s\"}\n", esc, ts);
	else
		snprintf(line, sizeof(line), "time=\"%s\" level=error msg=\"%s\"\n", ts, esc);
	if (write(fd, line, strlen(line)) < 0) {
		// nothing more to say
	}
	if (logfd >= 0) {
		snprintf(line, sizeof(line), "%s\n", msg);
		if (write(STDERR_FILENO, line, strlen(line)) < 0) {
			// nothing more to say
		}
	}
}

// release_fifo is libcontainer's exec() once the fifo is open: wait for the
// init's byte (checking every 100 ms that the init still lives, as
// libcontainer does), read to the end, remove the fifo.
static void release_fifo(const struct startargs *a, int logfd, int dirfd, int fifo, const struct state *st)
{
	char buf[64], msg[4200];
	size_t total = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fifo, .events = POLLIN };
		int r = poll(&pfd, 1, 100);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (init_alive(st))
				continue;
			// The init may have written and gone between two looks.
			n = read(fifo, buf, sizeof(buf));
			if (n > 0) {
				total += n;
				break;
			}
			report_error(a, logfd, "container process is already dead");
			exit(1);
		}
		n = read(fifo, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	if (total == 0) {
		report_error(a, logfd, "cannot start an already running container");
		exit(1);
	}
	close(fifo);
	if (unlinkat(dirfd, "exec.fifo", 0) < 0 && errno != ENOENT) {
		char err[256];

		snprintf(err, sizeof(err), "%s", strerror(errno));
		if (err[0] >= 'A' && err[0] <= 'Z')
			err[0] += 'a' - 'A';
		snprintf(msg, sizeof(msg), "remove %s/%s/exec.fifo: %s", a->root, a->id, err);
		report_error(a, logfd, msg);
		exit(1);
	}
	exit(0);
}

__attribute__((constructor)) static void berth_start_fast(int argc, char **argv, char **envp)
{
	struct startargs a;
	struct state st;
	struct stat fst;
	char *state;
	size_t len;
	int rootfd, dirfd, logfd = -1, fifo, ok;

	(void)envp;
#ifndef __GLIBC__
	// Only glibc hands constructors the command line.
	return;
#endif
	if (argc < 3 || getenv("BERTH_RUNNER_NO_FAST_START") != NULL)
		return;
	if (parse_args(argc, argv, &a) < 0 || clean_root(a.root) < 0 || !valid_id(a.id))
		return;
	rootfd = open(a.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return;
	dirfd = openat(rootfd, a.id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(rootfd);
	if (dirfd < 0)
		return;
	state = read_small(dirfd, "state.json", STATE_MAX, &len);
	if (state == NULL) {
		close(dirfd);
		return;
	}
	ok = parse_state(state, len, &st) == 0 && init_alive(&st) && thawed(&st);
	free(state);
	if (!ok) {
		close(dirfd);
		return;
	}
	// Like the Go program, create the log file whether or not it is written.
	if (a.log != NULL) {
		logfd = open(a.log, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
		if (logfd < 0) {
			close(dirfd);
			return;
		}
	}
	// The point of no return: opening the fifo lets the init's open of
	// its end complete. A missing fifo (a started container) is the Go
	// program's to report.
	fifo = openat(dirfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fifo < 0) {
		if (logfd >= 0)
			close(logfd);
		close(dirfd);
		return;
	}
	if (fstat(fifo, &fst) < 0 || !S_ISFIFO(fst.st_mode)) {
		close(fifo);
		if (logfd >= 0)
			close(logfd);
		close(dirfd);
		return;
	}
	release_fifo(&a, logfd, dirfd, fifo, &st);
}
