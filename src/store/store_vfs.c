/* A SQLite VFS over the default one whose only change is how index pages
 * are mapped: one read-only mapping per index file for the whole process,
 * kept until the last connection to the file closes.
 *
 * Why: SQLite's own unix VFS maps the file per connection and unmaps the
 * whole mapping whenever a read transaction finds that another connection
 * wrote (it cannot otherwise know the file was not truncated). With one
 * connection per IMAP session and a write every few commands, nearly every
 * command unmapped the index (TLB shootdowns on every core) and faulted its
 * pages back in: 10 to 15% of the IMAP server's CPU in the mix of `make
 * bench`. An index file only ever grows here (no VACUUM, no auto_vacuum,
 * and nothing but correo writes it), so a mapping of what the file held
 * once stays valid; pages past the size last seen are read as before.
 *
 * Everything else goes to the default VFS unchanged. No untrusted input
 * reaches this file. */
#include "store/store_int.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/xmalloc.h"

/* One index file mapped for the process. */
struct vfs_map {
	dev_t dev;
	ino_t ino;
	int fd;			/* O_RDONLY, for fstat when a page is past
				 * the size seen */
	const unsigned char *base;
	_Atomic int64_t size;	/* octets of the file known to exist */
	unsigned refs;		/* connections that have it open */
	struct vfs_map *next;
};

struct vfs_file {
	sqlite3_file base;	/* first: SQLite's handle is this struct */
	sqlite3_file *real;	/* the default VFS's file, right after */
	struct vfs_map *map;	/* main database files only; may be NULL */
};

static sqlite3_vfs *vfs_root;
static sqlite3_vfs vfs_self;
static pthread_mutex_t vfs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfs_map *vfs_maps;

/* ---- the process-wide mappings ------------------------------------------ */

static struct vfs_map *
vfs_map_find(dev_t dev, ino_t ino)
{
	for (struct vfs_map *m = vfs_maps; m != NULL; m = m->next)
		if (m->dev == dev && m->ino == ino)
			return m;
	return NULL;
}

/* The mapping of the file SQLite has just opened at path. A descriptor
 * of ours is opened only for a file not mapped yet and closed only with
 * the last connection: closing a descriptor drops every POSIX lock the
 * process holds on the file, SQLite's own among them. */
static struct vfs_map *
vfs_map_get(const char *path)
{
	struct stat sb;
	struct vfs_map *m;

	if (stat(path, &sb) < 0)
		return NULL;
	pthread_mutex_lock(&vfs_lock);
	if ((m = vfs_map_find(sb.st_dev, sb.st_ino)) != NULL) {
		m->refs++;
		pthread_mutex_unlock(&vfs_lock);
		return m;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat fsb;
	/* Renamed over since: no mapping (the fd is of a file SQLite may
	 * hold too, so it is kept rather than closed). */
	if (fd < 0 || fstat(fd, &fsb) < 0 || fsb.st_dev != sb.st_dev ||
	    fsb.st_ino != sb.st_ino) {
		pthread_mutex_unlock(&vfs_lock);
		return NULL;
	}
	void *base = mmap(NULL, STORE_MMAP_BYTES, PROT_READ, MAP_SHARED, fd,
	    0);
	if (base == MAP_FAILED) {
		pthread_mutex_unlock(&vfs_lock);
		return NULL;	/* fd kept, as above */
	}
	m = x_calloc(1, sizeof(*m));
	m->dev = fsb.st_dev;
	m->ino = fsb.st_ino;
	m->fd = fd;
	m->base = base;
	atomic_init(&m->size, (int64_t)fsb.st_size);
	m->refs = 1;
	m->next = vfs_maps;
	vfs_maps = m;
	pthread_mutex_unlock(&vfs_lock);
	return m;
}

static void
vfs_map_put(struct vfs_map *m)
{
	pthread_mutex_lock(&vfs_lock);
	if (--m->refs > 0) {
		pthread_mutex_unlock(&vfs_lock);
		return;
	}
	struct vfs_map **pp = &vfs_maps;
	while (*pp != m)
		pp = &(*pp)->next;
	*pp = m->next;
	pthread_mutex_unlock(&vfs_lock);
	munmap((void *)m->base, STORE_MMAP_BYTES);
	close(m->fd);
	free(m);
}

/* Octets past a page that must exist too: SQLite may read a little beyond
 * a corrupt page (its own VFS keeps the same margin), and past the end of
 * the file that would be SIGBUS, not an error. */
#define VFS_SLACK	256

/* Whether [off, off + len) and the slack after it lie within the file;
 * asks the kernel again only when that is past what was seen, since files
 * only grow. */
static bool
vfs_map_covers(struct vfs_map *m, int64_t off, int64_t len)
{
	if (off < 0 || len <= 0 || off + len + VFS_SLACK > STORE_MMAP_BYTES)
		return false;
	len += VFS_SLACK;
	if (off + len <= atomic_load_explicit(&m->size, memory_order_relaxed))
		return true;
	struct stat sb;
	if (fstat(m->fd, &sb) < 0)
		return false;
	int64_t seen = atomic_load_explicit(&m->size, memory_order_relaxed);
	while (sb.st_size > seen && !atomic_compare_exchange_weak(&m->size,
	    &seen, (int64_t)sb.st_size))
		;
	return off + len <= sb.st_size;
}

/* ---- sqlite3_io_methods: all but fetch go to the default VFS ---------- */

#define REAL(f)	(((struct vfs_file *)(f))->real)

static int
vfs_close(sqlite3_file *f)
{
	struct vfs_file *vf = (struct vfs_file *)f;
	int rc = vf->real->pMethods != NULL ?
	    vf->real->pMethods->xClose(vf->real) : SQLITE_OK;
	if (vf->map != NULL)
		vfs_map_put(vf->map);
	vf->map = NULL;
	return rc;
}

static int
vfs_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int
vfs_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int
vfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct vfs_file *vf = (struct vfs_file *)f;
	int rc = vf->real->pMethods->xTruncate(vf->real, size);

	/* Only a VACUUM would shrink an index, and nothing runs one; if it
	 * ever happens, pages past the new end are read again. */
	if (rc == SQLITE_OK && vf->map != NULL &&
	    size < atomic_load(&vf->map->size))
		atomic_store(&vf->map->size, (int64_t)size);
	return rc;
}

static int
vfs_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
vfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
vfs_lock_file(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int
vfs_unlock_file(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int
vfs_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
vfs_file_control(sqlite3_file *f, int op, void *arg)
{
	/* The mapping is ours: the default VFS must not make its own. The
	 * limit SQLite sets only tells it to use xFetch at all. */
	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		*(sqlite3_int64 *)arg = STORE_MMAP_BYTES;
		return SQLITE_OK;
	}
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
vfs_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
vfs_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
vfs_shm_map(sqlite3_file *f, int region, int size, int extend,
    void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, pp);
}

static int
vfs_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void
vfs_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
vfs_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static int
vfs_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	struct vfs_file *vf = (struct vfs_file *)f;

	*pp = NULL;
	if (vf->map != NULL && vfs_map_covers(vf->map, off, n))
		*pp = (void *)(vf->map->base + off);
	return SQLITE_OK;
}

/* Nothing to give back: a page stays valid as long as the mapping, and
 * "unmap all" (p == NULL, after another connection wrote) is what this
 * VFS exists to skip. */
static int
vfs_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)f;
	(void)off;
	(void)p;
	return SQLITE_OK;
}

static const sqlite3_io_methods vfs_methods = {
	.iVersion = 3,
	.xClose = vfs_close,
	.xRead = vfs_read,
	.xWrite = vfs_write,
	.xTruncate = vfs_truncate,
	.xSync = vfs_sync,
	.xFileSize = vfs_file_size,
	.xLock = vfs_lock_file,
	.xUnlock = vfs_unlock_file,
	.xCheckReservedLock = vfs_check_reserved,
	.xFileControl = vfs_file_control,
	.xSectorSize = vfs_sector_size,
	.xDeviceCharacteristics = vfs_device_characteristics,
	.xShmMap = vfs_shm_map,
	.xShmLock = vfs_shm_lock,
	.xShmBarrier = vfs_shm_barrier,
	.xShmUnmap = vfs_shm_unmap,
	.xFetch = vfs_fetch,
	.xUnfetch = vfs_unfetch,
};

/* ---- sqlite3_vfs -------------------------------------------------------- */

static int
vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out_flags)
{
	struct vfs_file *vf = (struct vfs_file *)f;

	(void)vfs;
	vf->real = (sqlite3_file *)(vf + 1);
	vf->map = NULL;
	int rc = vfs_root->xOpen(vfs_root, name, vf->real, flags, out_flags);
	/* SQLite calls xClose after a failed xOpen that set pMethods. */
	f->pMethods = vf->real->pMethods != NULL ? &vfs_methods : NULL;
	if (rc == SQLITE_OK && name != NULL && (flags & SQLITE_OPEN_MAIN_DB))
		vf->map = vfs_map_get(name);
	return rc;
}

static void
vfs_register(void)
{
	vfs_root = sqlite3_vfs_find(NULL);
	if (vfs_root == NULL)
		fatalx("store: SQLite has no default VFS");
	vfs_self = *vfs_root;
	vfs_self.zName = STORE_VFS_NAME;
	vfs_self.szOsFile = (int)(sizeof(struct vfs_file) +
	    (size_t)vfs_root->szOsFile);
	vfs_self.xOpen = vfs_open;
	vfs_self.pNext = NULL;
	int rc = sqlite3_vfs_register(&vfs_self, 0);
	if (rc != SQLITE_OK)
		fatalx("store: cannot register the index VFS: %s",
		    sqlite3_errstr(rc));
}

void
store_vfs_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, vfs_register);
}
