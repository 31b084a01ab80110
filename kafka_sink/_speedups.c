/*
 * kafka_sink._speedups: the compiled hot path.
 *
 * Theory of operation. The pure-Python modules are the specification and the
 * fallback; this module mirrors, byte for byte and error for error, the parts
 * that run once per record:
 *
 *   BatchBuilder      kafka_sink/protocol/records.py BatchBuilder: encodes a
 *                     record into its batch's buffer as it is appended, seals
 *                     the batch (header fields, CRC-32C) in build().
 *   murmur2           kafka_sink/producer/partitioner.py murmur2 and
 *                     partition_for_key (the Java client's hash).
 *   AccumulatorCore   the state that RecordAccumulator's fast path reads and
 *                     writes (buffer accounting, open batches), as C fields
 *                     that the Python class inherits.
 *   SinkCore          Sink.produce() and Sink.enqueue() for the common case,
 *                     in one C call.
 *
 * Everything here runs with the GIL held and never releases it, calls no
 * Python code on the common path, and so is atomic with respect to every
 * other Python thread. That is what makes the fast append free of lock
 * convoys: it takes the accumulator's lock only when the lock is free
 * (acquire(blocking=False), which never gives up the GIL), and since it holds
 * the GIL from that acquire to the release, no other thread can ever find the
 * lock held by it. When the lock is busy (the sender thread or a slow append
 * holds it), the call takes the pure-Python slow path, which waits for it.
 *
 * Anything unusual (a type other than bytes or None, an oversized varint, a
 * header that is not a (str, bytes | None) pair, a full buffer, a batch that
 * is not open) is handed to the pure-Python code, which raises the same typed
 * error on both paths because it is the same code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define BATCH_HEADER_SIZE 61
#define CRC_START 21
#define INT32_MAX_ 2147483647LL

/* ------------------------------------------------------------------------- */
/* Python objects handed over by configure()                                  */
/* ------------------------------------------------------------------------- */

/* The pure module (kafka_sink.protocol.records): its helpers are looked up
 * when used (never per record), so that what a test patches there is what
 * both paths call. */
static PyObject *records_module;
static PyObject *py_invalid_argument; /* errors.InvalidArgumentError */
static PyObject *str_compress, *str_record_fallback, *str_check_range, *str_builder_args;

static PyObject *
helper_call(PyObject *name, PyObject *args, PyObject *kwds)
{
    if (records_module == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "kafka_sink._speedups is not configured");
        return NULL;
    }
    PyObject *function = PyObject_GetAttr(records_module, name);
    if (function == NULL)
        return NULL;
    PyObject *result = PyObject_Call(function, args, kwds);
    Py_DECREF(function);
    return result;
}

static PyObject *
helper_call_args(PyObject *name, PyObject **args, Py_ssize_t n)
{
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    PyObject *result = helper_call(name, tuple, NULL);
    Py_DECREF(tuple);
    return result;
}

static PyObject *str_acquire, *str_release, *str_index, *str_partition_counts;

/* ------------------------------------------------------------------------- */
/* CRC-32C (Castagnoli), as the crc32c package computes it                    */
/* ------------------------------------------------------------------------- */

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xFF] ^ (c >> 8);
            crc_table[t][n] = c;
        }
    }
}

/* Slicing-by-8: about 1.5 GB/s, the portable path. */
static uint32_t
crc_soft(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = crc_table[7][w & 0xFF] ^ crc_table[6][(w >> 8) & 0xFF] ^
              crc_table[5][(w >> 16) & 0xFF] ^ crc_table[4][(w >> 24) & 0xFF] ^
              crc_table[3][(w >> 32) & 0xFF] ^ crc_table[2][(w >> 40) & 0xFF] ^
              crc_table[1][(w >> 48) & 0xFF] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* SSE 4.2 has a CRC-32C instruction: about ten times the table's speed. */
__attribute__((target("sse4.2"))) static uint32_t
crc_hard(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int have_sse42;
#endif

static uint32_t
crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_sse42)
        return crc_hard(crc, p, n);
#endif
    return crc_soft(crc, p, n);
}

static PyObject *
py_crc32c(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned int crc = 0;
    if (!PyArg_ParseTuple(args, "y*|I:crc32c", &view, &crc))
        return NULL;
    uint32_t out = crc32c(crc, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(out);
}

/* ------------------------------------------------------------------------- */
/* murmur2, as the Java client's Utils.murmur2                                */
/* ------------------------------------------------------------------------- */

static uint32_t
murmur2_u(const unsigned char *data, Py_ssize_t length)
{
    const uint32_t m = 0x5BD1E995u;
    uint32_t h = 0x9747B28Cu ^ (uint32_t)length;
    Py_ssize_t words = length >> 2;
    for (Py_ssize_t i = 0; i < words; i++) {
        const unsigned char *q = data + 4 * i;
        uint32_t k = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) |
                     ((uint32_t)q[3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = data + 4 * words;
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static int
bytes_like(PyObject *obj, const char **data, Py_ssize_t *size)
{
    if (PyBytes_CheckExact(obj)) {
        *data = PyBytes_AS_STRING(obj);
        *size = PyBytes_GET_SIZE(obj);
        return 1;
    }
    if (PyByteArray_Check(obj)) {
        *data = PyByteArray_AS_STRING(obj);
        *size = PyByteArray_GET_SIZE(obj);
        return 1;
    }
    if (PyMemoryView_Check(obj)) {
        /* As bytes.join takes it in the pure encoder: a contiguous view of bytes. */
        Py_buffer *view = PyMemoryView_GET_BUFFER(obj);
        if (view->itemsize == 1 && PyBuffer_IsContiguous(view, 'C')) {
            *data = view->buf;
            *size = view->len;
            return 1;
        }
    }
    return 0;
}

static PyObject *
py_murmur2(PyObject *self, PyObject *arg)
{
    const char *data;
    Py_ssize_t size;
    if (!bytes_like(arg, &data, &size)) {
        PyErr_Format(PyExc_TypeError, "murmur2() needs bytes, not %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    return PyLong_FromLong((long)(int32_t)murmur2_u((const unsigned char *)data, size));
}

static PyObject *
py_partition_for_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *data;
    Py_ssize_t size;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "partition_for_key(key, num_partitions)");
        return NULL;
    }
    if (!bytes_like(args[0], &data, &size)) {
        PyErr_Format(PyExc_TypeError, "a key must be bytes, not %.80s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    long n = PyLong_AsLong(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 1) {
        PyErr_Format(py_invalid_argument ? py_invalid_argument : PyExc_ValueError,
                     "num_partitions must be >= 1");
        return NULL;
    }
    uint32_t positive = murmur2_u((const unsigned char *)data, size) & 0x7FFFFFFFu;
    return PyLong_FromLong((long)(positive % (uint32_t)n));
}

/* ------------------------------------------------------------------------- */
/* Varints (zig-zag, base 128)                                                */
/* ------------------------------------------------------------------------- */

static inline int
varint_size(int64_t value)
{
    uint64_t raw = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    int n = 1;
    while (raw >= 0x80) {
        raw >>= 7;
        n++;
    }
    return n;
}

static inline char *
put_varint(char *out, int64_t value)
{
    uint64_t raw = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    while (raw >= 0x80) {
        *out++ = (char)((raw & 0x7F) | 0x80);
        raw >>= 7;
    }
    *out++ = (char)raw;
    return out;
}

static inline void
put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static inline void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static inline void
put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* ------------------------------------------------------------------------- */
/* BatchBuilder                                                               */
/* ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *compression; /* a Compression member */
    PyObject *level;       /* the compression level, or None */
    int codec;
    Py_ssize_t max_bytes;
    char *buf;
    Py_ssize_t len, cap;
    Py_ssize_t count;
    int64_t base_ts, max_ts;
    PyObject *payload; /* the records section as built last, or NULL */
    Py_ssize_t payload_count;
} Builder;

static PyTypeObject BuilderType;

static int
builder_reserve(Builder *self, Py_ssize_t extra)
{
    Py_ssize_t need = self->len + extra;
    if (need <= self->cap)
        return 0;
    Py_ssize_t cap = self->cap ? self->cap : 1024;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *grown = PyMem_Realloc(self->buf, (size_t)cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->buf = grown;
    self->cap = cap;
    return 0;
}

static int
builder_init(Builder *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"compression", "max_bytes", "compression_level", NULL};
    PyObject *compression = NULL, *max_bytes = NULL, *level = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOO:BatchBuilder", names, &compression,
                                     &max_bytes, &level))
        return -1;
    /* The pure module validates (and names the bad argument): one source of truth. */
    PyObject *checked = helper_call(str_builder_args, args, kwds);
    if (checked == NULL)
        return -1;
    PyObject *codec = PyTuple_GET_ITEM(checked, 0);
    Py_ssize_t limit = PyLong_AsSsize_t(PyTuple_GET_ITEM(checked, 1));
    Py_XSETREF(self->level, Py_NewRef(PyTuple_GET_ITEM(checked, 2)));
    long codec_value = PyLong_AsLong(codec);
    if ((limit == -1 || codec_value == -1) && PyErr_Occurred()) {
        Py_DECREF(checked);
        return -1;
    }
    Py_INCREF(codec);
    Py_XSETREF(self->compression, codec);
    Py_DECREF(checked);
    self->codec = (int)codec_value;
    self->max_bytes = limit;
    self->len = 0;
    self->count = 0;
    self->base_ts = self->max_ts = 0;
    Py_CLEAR(self->payload);
    self->payload_count = 0;
    return 0;
}

static void
builder_dealloc(Builder *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->compression);
    Py_CLEAR(self->level);
    Py_CLEAR(self->payload);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
builder_traverse(Builder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->compression);
    Py_VISIT(self->level);
    return 0;
}

/* A header list the C encoder takes as it is: a list or tuple of 2-tuples
 * (str, bytes | bytearray | None). Returns the encoded size of headersCount and
 * headers, or -1 when the pure encoder must decide (a Python error is never set). */
static Py_ssize_t
headers_size(PyObject *headers)
{
    if (headers == Py_None)
        return 1;
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
    Py_ssize_t size = varint_size(n);
    PyObject **items = PySequence_Fast_ITEMS(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            return -1;
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_Check(name))
            return -1;
        Py_ssize_t name_len;
        const char *raw = PyUnicode_AsUTF8AndSize(name, &name_len);
        if (raw == NULL) { /* a lone surrogate: the pure encoder names it */
            PyErr_Clear();
            return -1;
        }
        size += varint_size(name_len) + name_len;
        if (value == Py_None) {
            size += 1;
        }
        else {
            const char *data;
            Py_ssize_t len;
            if (!bytes_like(value, &data, &len))
                return -1;
            size += varint_size(len) + len;
        }
    }
    return size;
}

static char *
put_headers(char *out, PyObject *headers)
{
    if (headers == Py_None) {
        *out++ = 0;
        return out;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
    PyObject **items = PySequence_Fast_ITEMS(headers);
    out = put_varint(out, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(items[i], 0), *value = PyTuple_GET_ITEM(items[i], 1);
        Py_ssize_t name_len;
        const char *raw = PyUnicode_AsUTF8AndSize(name, &name_len); /* cached: cannot fail now */
        out = put_varint(out, name_len);
        memcpy(out, raw, (size_t)name_len);
        out += name_len;
        if (value == Py_None) {
            *out++ = 1;
        }
        else {
            const char *data;
            Py_ssize_t len;
            bytes_like(value, &data, &len);
            out = put_varint(out, len);
            memcpy(out, data, (size_t)len);
            out += len;
        }
    }
    return out;
}

/* Appends one record. Returns 1 (appended), 0 (does not fit), -1 (error set). */
static int
builder_append_record(Builder *self, PyObject *timestamp, PyObject *key, PyObject *value,
                      PyObject *headers)
{
    Py_ssize_t count = self->count;
    int overflow = 0;
    long long ts = 0;
    int fast = PyLong_CheckExact(timestamp);
    if (fast) {
        ts = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
        fast = !overflow && !(ts == -1 && PyErr_Occurred());
        PyErr_Clear();
    }
    int64_t base = count ? self->base_ts : (int64_t)ts;
    int64_t delta = 0;
    const char *kdata = NULL, *vdata = NULL;
    Py_ssize_t klen = -1, vlen = -1, hsize = 1;
    if (fast)
        fast = !__builtin_sub_overflow((int64_t)ts, base, &delta) && count <= INT32_MAX_;
    if (fast && key != Py_None)
        fast = bytes_like(key, &kdata, &klen);
    if (fast && value != Py_None)
        fast = bytes_like(value, &vdata, &vlen);
    if (fast) {
        hsize = headers == NULL ? 1 : headers_size(headers);
        fast = hsize >= 0;
        /* an empty list or tuple is "no headers", as the pure encoder's truthiness test */
        if (fast && headers != NULL && headers != Py_None && PySequence_Fast_GET_SIZE(headers) == 0)
            headers = Py_None;
    }
    if (!fast) {
        /* The pure encoder: the same bytes for what it accepts, its errors otherwise. */
        PyObject *base_obj = count ? PyLong_FromLongLong(self->base_ts) : Py_NewRef(timestamp);
        PyObject *count_obj = PyLong_FromSsize_t(count);
        if (base_obj == NULL || count_obj == NULL) {
            Py_XDECREF(base_obj);
            Py_XDECREF(count_obj);
            return -1;
        }
        PyObject *call[6] = {count_obj, timestamp, base_obj, key, value,
                             headers ? headers : Py_None};
        PyObject *record = helper_call_args(str_record_fallback, call, 6);
        Py_DECREF(base_obj);
        Py_DECREF(count_obj);
        if (record == NULL)
            return -1;
        if (!PyBytes_Check(record)) {
            Py_DECREF(record);
            PyErr_SetString(PyExc_TypeError, "the record encoder returned no bytes");
            return -1;
        }
        /* It checked the timestamp: it is an int in int64 range. */
        ts = PyLong_AsLongLong(timestamp);
        if (ts == -1 && PyErr_Occurred()) {
            Py_DECREF(record);
            return -1;
        }
        Py_ssize_t rlen = PyBytes_GET_SIZE(record);
        if (BATCH_HEADER_SIZE + self->len + rlen > self->max_bytes && count) {
            Py_DECREF(record);
            return 0;
        }
        if (builder_reserve(self, rlen) < 0) {
            Py_DECREF(record);
            return -1;
        }
        memcpy(self->buf + self->len, PyBytes_AS_STRING(record), (size_t)rlen);
        Py_DECREF(record);
        self->len += rlen;
    }
    else {
        Py_ssize_t body = 1 + varint_size(delta) + varint_size(count) +
                          (kdata ? varint_size(klen) + klen : 1) +
                          (vdata ? varint_size(vlen) + vlen : 1) + hsize;
        Py_ssize_t rlen = varint_size(body) + body;
        if (BATCH_HEADER_SIZE + self->len + rlen > self->max_bytes && count)
            return 0;
        if (builder_reserve(self, rlen) < 0)
            return -1;
        char *out = self->buf + self->len;
        out = put_varint(out, body);
        *out++ = 0; /* attributes */
        out = put_varint(out, delta);
        out = put_varint(out, count);
        if (kdata) {
            out = put_varint(out, klen);
            memcpy(out, kdata, (size_t)klen);
            out += klen;
        }
        else {
            *out++ = 1;
        }
        if (vdata) {
            out = put_varint(out, vlen);
            memcpy(out, vdata, (size_t)vlen);
            out += vlen;
        }
        else {
            *out++ = 1;
        }
        out = headers == NULL ? (*out = 0, out + 1) : put_headers(out, headers);
        self->len += rlen;
    }
    if (!count)
        self->base_ts = self->max_ts = (int64_t)ts;
    else if ((int64_t)ts > self->max_ts)
        self->max_ts = (int64_t)ts;
    self->count = count + 1;
    return 1;
}

static PyObject *
builder_append(Builder *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"timestamp", "key", "value", "headers"};
    PyObject *slots[4] = {NULL, NULL, NULL, NULL};
    if (nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "append() takes at most 4 arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        slots[i] = args[i];
    if (kwnames) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            int found = 0;
            for (int i = 0; i < 4; i++) {
                if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                    if (slots[i]) {
                        PyErr_Format(PyExc_TypeError, "append() got multiple values for %s",
                                     names[i]);
                        return NULL;
                    }
                    slots[i] = args[nargs + k];
                    found = 1;
                }
            }
            if (!found) {
                PyErr_Format(PyExc_TypeError, "append() got an unexpected keyword argument %R",
                             name);
                return NULL;
            }
        }
    }
    for (int i = 0; i < 3; i++) {
        if (slots[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "append() missing argument %s", names[i]);
            return NULL;
        }
    }
    int done = builder_append_record(self, slots[0], slots[1], slots[2], slots[3]);
    if (done < 0)
        return NULL;
    return PyBool_FromLong(done);
}

static PyObject *
raise_invalid(const char *argument, const char *problem)
{
    PyObject *error = PyObject_CallFunction(py_invalid_argument, "ss", argument, problem);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}

static int
in_range(PyObject *value, long long low, long long high, long long *out)
{
    if (!PyLong_CheckExact(value))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    if (v < low || v > high)
        return 0;
    *out = v;
    return 1;
}

static int
checked_field(const char *argument, PyObject *value, long long low, long long high,
              long long *out)
{
    if (in_range(value, low, high, out))
        return 0;
    /* The pure check raises the error, with its message. */
    PyObject *args = Py_BuildValue("(sOLL)", argument, value, low, high);
    if (args == NULL)
        return -1;
    PyObject *result = helper_call(str_check_range, args, NULL);
    Py_DECREF(args);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    PyErr_Format(PyExc_TypeError, "%s: an int is required", argument);
    return -1;
}

static PyObject *
builder_payload(Builder *self)
{
    if (self->payload != NULL && self->payload_count == self->count)
        return Py_NewRef(self->payload);
    PyObject *records = PyBytes_FromStringAndSize(self->buf, self->len);
    if (records == NULL)
        return NULL;
    if (self->codec) {
        PyObject *call[3] = {self->compression, records, self->level ? self->level : Py_None};
        PyObject *packed = helper_call_args(str_compress, call, 3);
        Py_DECREF(records);
        if (packed == NULL)
            return NULL;
        if (!PyBytes_Check(packed)) {
            Py_SETREF(packed, PyBytes_FromObject(packed));
            if (packed == NULL)
                return NULL;
        }
        records = packed;
    }
    Py_XSETREF(self->payload, Py_NewRef(records));
    self->payload_count = self->count;
    return records;
}

static PyObject *
builder_build(Builder *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"producer_id", "producer_epoch", "base_sequence", "transactional",
                            NULL};
    PyObject *pid_obj = NULL, *epoch_obj = NULL, *seq_obj = NULL, *txn_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOO:build", names, &pid_obj, &epoch_obj,
                                     &seq_obj, &txn_obj))
        return NULL;
    if (!self->count)
        return raise_invalid("records", "a record batch needs at least one record");
    long long pid = -1, epoch = -1, seq = -1;
    if (pid_obj && checked_field("producer_id", pid_obj, INT64_MIN, INT64_MAX, &pid) < 0)
        return NULL;
    if (epoch_obj && checked_field("producer_epoch", epoch_obj, -32768, 32767, &epoch) < 0)
        return NULL;
    if (seq_obj && checked_field("base_sequence", seq_obj, -INT32_MAX_ - 1, INT32_MAX_, &seq) < 0)
        return NULL;
    int transactional = txn_obj ? PyObject_IsTrue(txn_obj) : 0;
    if (transactional < 0)
        return NULL;
    PyObject *payload = builder_payload(self);
    if (payload == NULL)
        return NULL;
    Py_ssize_t plen = PyBytes_GET_SIZE(payload);
    PyObject *out = PyBytes_FromStringAndSize(NULL, BATCH_HEADER_SIZE + plen);
    if (out == NULL) {
        Py_DECREF(payload);
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    put_be64(p, 0);                                                  /* baseOffset */
    put_be32(p + 8, (uint32_t)(BATCH_HEADER_SIZE - 12 + plen));      /* batchLength */
    put_be32(p + 12, 0xFFFFFFFFu);                                   /* partitionLeaderEpoch */
    p[16] = 2;                                                       /* magic */
    put_be16(p + 21, (uint16_t)(self->codec | (transactional ? 0x10 : 0)));
    put_be32(p + 23, (uint32_t)(self->count - 1));                   /* lastOffsetDelta */
    put_be64(p + 27, (uint64_t)self->base_ts);
    put_be64(p + 35, (uint64_t)self->max_ts);
    put_be64(p + 43, (uint64_t)pid);
    put_be16(p + 51, (uint16_t)epoch);
    put_be32(p + 53, (uint32_t)seq);
    put_be32(p + 57, (uint32_t)self->count);
    memcpy(p + BATCH_HEADER_SIZE, PyBytes_AS_STRING(payload), (size_t)plen);
    Py_DECREF(payload);
    put_be32(p + 17, crc32c(0, p + CRC_START, (size_t)(BATCH_HEADER_SIZE - CRC_START + plen)));
    return out;
}

static Py_ssize_t
builder_length(Builder *self)
{
    return self->count;
}

static PyObject *
builder_repr(Builder *self)
{
    PyObject *name = PyObject_GetAttrString(self->compression, "name");
    if (name == NULL)
        return NULL;
    PyObject *text = PyUnicode_FromFormat(
        "BatchBuilder(compression=%U, records=%zd, size_in_bytes=%zd, max_bytes=%zd)", name,
        self->count, BATCH_HEADER_SIZE + self->len, self->max_bytes);
    Py_DECREF(name);
    return text;
}

static PyObject *
builder_get_compression(Builder *self, void *closure)
{
    return Py_NewRef(self->compression);
}
static PyObject *
builder_get_max_bytes(Builder *self, void *closure)
{
    return PyLong_FromSsize_t(self->max_bytes);
}
static PyObject *
builder_get_record_count(Builder *self, void *closure)
{
    return PyLong_FromSsize_t(self->count);
}
static PyObject *
builder_get_size(Builder *self, void *closure)
{
    return PyLong_FromSsize_t(BATCH_HEADER_SIZE + self->len);
}
static PyObject *
builder_get_first(Builder *self, void *closure)
{
    if (!self->count)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(self->base_ts);
}
static PyObject *
builder_get_max(Builder *self, void *closure)
{
    if (!self->count)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(self->max_ts);
}

static PyGetSetDef builder_getset[] = {
    {"compression", (getter)builder_get_compression, NULL, "The codec the batch is built with."},
    {"max_bytes", (getter)builder_get_max_bytes, NULL, "The bound append() enforces."},
    {"record_count", (getter)builder_get_record_count, NULL, "Records appended so far."},
    {"size_in_bytes", (getter)builder_get_size, NULL,
     "Uncompressed size of the batch so far, the 61-byte header included."},
    {"first_timestamp", (getter)builder_get_first, NULL, "baseTimestamp; None if empty."},
    {"max_timestamp", (getter)builder_get_max, NULL, "Largest timestamp; None if empty."},
    {NULL},
};

static PyMethodDef builder_methods[] = {
    {"append", (PyCFunction)(void (*)(void))builder_append, METH_FASTCALL | METH_KEYWORDS,
     "append(timestamp, key, value, headers=()) -> bool: encode a record into the batch."},
    {"build", (PyCFunction)(void (*)(void))builder_build, METH_VARARGS | METH_KEYWORDS,
     "build(producer_id=-1, producer_epoch=-1, base_sequence=-1, transactional=False) -> bytes"},
    {NULL},
};

static PySequenceMethods builder_as_sequence = {
    .sq_length = (lenfunc)builder_length,
};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kafka_sink._speedups.BatchBuilder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled twin of kafka_sink.protocol.records.BatchBuilder.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)builder_init,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_traverse = (traverseproc)builder_traverse,
    .tp_repr = (reprfunc)builder_repr,
    .tp_methods = builder_methods,
    .tp_getset = builder_getset,
    .tp_as_sequence = &builder_as_sequence,
};

/* ------------------------------------------------------------------------- */
/* AccumulatorCore: what RecordAccumulator's fast path reads and writes        */
/* ------------------------------------------------------------------------- */

/* RecordAccumulator (kafka_sink/producer/accumulator.py) inherits these
 * fields; the Python code reads and writes them as ordinary attributes, and
 * SinkCore reads them as C fields. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t used, buffer_limit, incomplete, queued, max_record, batch_size;
    char closing;
    PyObject *batches; /* {(topic, partition): deque[ProducerBatch]} */
    PyObject *pending; /* {topic: deque[PendingRecord]} */
    PyObject *lock;    /* threading.Lock */
} Accumulator;

static int
acc_traverse(Accumulator *self, visitproc visit, void *arg)
{
    Py_VISIT(self->batches);
    Py_VISIT(self->pending);
    Py_VISIT(self->lock);
    return 0;
}

static int
acc_clear(Accumulator *self)
{
    Py_CLEAR(self->batches);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->lock);
    return 0;
}

static void
acc_dealloc(Accumulator *self)
{
    PyObject_GC_UnTrack(self);
    acc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef acc_members[] = {
    {"_used", T_PYSSIZET, offsetof(Accumulator, used), 0, NULL},
    {"_buffer_limit", T_PYSSIZET, offsetof(Accumulator, buffer_limit), 0, NULL},
    {"_incomplete", T_PYSSIZET, offsetof(Accumulator, incomplete), 0, NULL},
    {"_queued", T_PYSSIZET, offsetof(Accumulator, queued), 0, NULL},
    {"_max_record", T_PYSSIZET, offsetof(Accumulator, max_record), 0, NULL},
    {"_batch_size", T_PYSSIZET, offsetof(Accumulator, batch_size), 0, NULL},
    {"_closing", T_BOOL, offsetof(Accumulator, closing), 0, NULL},
    {"_batches", T_OBJECT, offsetof(Accumulator, batches), 0, NULL},
    {"_pending", T_OBJECT, offsetof(Accumulator, pending), 0, NULL},
    {"_lock", T_OBJECT, offsetof(Accumulator, lock), 0, NULL},
    {NULL},
};

static PyTypeObject AccumulatorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kafka_sink._speedups.AccumulatorCore",
    .tp_basicsize = sizeof(Accumulator),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The fields of RecordAccumulator that the compiled fast path shares.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)acc_dealloc,
    .tp_traverse = (traverseproc)acc_traverse,
    .tp_clear = (inquiry)acc_clear,
    .tp_members = acc_members,
};

/* ProducerBatch and DeliveryFuture are __slots__ classes: their fields sit at
 * fixed offsets in the object, which bind_slots() reads once from the member
 * descriptors. Reading a field is then a load, not an attribute lookup. */
static PyTypeObject *batch_type, *future_type;
static PyTypeObject *lock_type; /* _thread.LockType */
static Py_ssize_t off_sealed = -1, off_builder = -1, off_futures = -1, off_reports = -1,
                  off_reserved = -1, off_index = -1;

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL)
        return -1;
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
    if (ok)
        *offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_DECREF(descr);
    if (!ok)
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
    return ok ? 0 : -1;
}

static PyObject *
py_bind_slots(PyObject *module, PyObject *args)
{
    PyTypeObject *batch, *future;
    if (!PyArg_ParseTuple(args, "O!O!:bind_slots", &PyType_Type, &batch, &PyType_Type, &future))
        return NULL;
    if (slot_offset(batch, "sealed", &off_sealed) || slot_offset(batch, "builder", &off_builder) ||
        slot_offset(batch, "futures", &off_futures) ||
        slot_offset(batch, "reports", &off_reports) ||
        slot_offset(batch, "reserved", &off_reserved) || slot_offset(future, "_index", &off_index))
        return NULL;
    Py_XSETREF(batch_type, (PyTypeObject *)Py_NewRef(batch));
    Py_XSETREF(future_type, (PyTypeObject *)Py_NewRef(future));
    Py_RETURN_NONE;
}

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* The open batch of a queue of batches, as a new reference, or NULL:
 * its last batch, when that is a ProducerBatch that is not sealed and has a
 * compiled builder. (The pure code seals a batch before it sends it.) */
static PyObject *
last_open_batch(PyObject *queue)
{
    Py_ssize_t n = PySequence_Size(queue);
    if (n <= 0) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *batch = PySequence_GetItem(queue, n - 1); /* new reference */
    if (batch == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (batch_type == NULL || !Py_IS_TYPE(batch, batch_type)) {
        Py_DECREF(batch);
        return NULL;
    }
    PyObject *sealed = SLOT(batch, off_sealed), *builder = SLOT(batch, off_builder);
    if (sealed != Py_False || builder == NULL || !Py_IS_TYPE(builder, &BuilderType)) {
        Py_DECREF(batch);
        return NULL;
    }
    return batch; /* a new reference */
}

/* (topic, partition) keys of the accumulator's dict, made once each. */
static PyObject *
tp_key(PyObject *cache, PyObject *topic, PyObject *partition)
{
    Py_ssize_t index = PyLong_AsSsize_t(partition);
    if (index < 0 || index > 65535 || cache == NULL) {
        PyErr_Clear();
        return PyTuple_Pack(2, topic, partition);
    }
    PyObject *keys = PyDict_GetItemWithError(cache, topic); /* borrowed */
    if (keys == NULL) {
        if (PyErr_Occurred() || PyDict_GET_SIZE(cache) >= 10000)
            return PyErr_Occurred() ? NULL : PyTuple_Pack(2, topic, partition);
        keys = PyList_New(0);
        if (keys == NULL || PyDict_SetItem(cache, topic, keys) < 0) {
            Py_XDECREF(keys);
            return NULL;
        }
        Py_DECREF(keys);
    }
    while (PyList_GET_SIZE(keys) <= index) {
        PyObject *p = PyLong_FromSsize_t(PyList_GET_SIZE(keys));
        PyObject *key = p ? PyTuple_Pack(2, topic, p) : NULL;
        Py_XDECREF(p);
        if (key == NULL || PyList_Append(keys, key) < 0) {
            Py_XDECREF(key);
            return NULL;
        }
        Py_DECREF(key);
    }
    return Py_NewRef(PyList_GET_ITEM(keys, index));
}

/* The open batch of (topic, partition) (a new reference), or NULL; -1: error. */
static int
open_batch(Accumulator *acc, PyObject *keys, PyObject *topic, PyObject *partition,
           PyObject **batch)
{
    *batch = NULL;
    if (acc->batches == NULL || !PyDict_CheckExact(acc->batches))
        return 0;
    PyObject *tp = tp_key(keys, topic, partition);
    if (tp == NULL)
        return -1;
    PyObject *queue = PyDict_GetItemWithError(acc->batches, tp); /* borrowed */
    Py_DECREF(tp);
    if (queue == NULL)
        return PyErr_Occurred() ? -1 : 0;
    *batch = last_open_batch(queue);
    return 0;
}

/* Attach the record just appended: its future (index), or its report's run. */
static int
batch_attach(PyObject *batch, Builder *builder, PyObject *future, PyObject *report,
             Py_ssize_t size)
{
    PyObject *index = PyLong_FromSsize_t(builder->count - 1);
    if (index == NULL)
        return -1;
    int failed = 0;
    if (future != NULL) {
        PyObject *futures = SLOT(batch, off_futures);
        if (Py_IS_TYPE(future, future_type))
            Py_XSETREF(SLOT(future, off_index), Py_NewRef(index));
        else
            failed = PyObject_SetAttr(future, str_index, index) < 0;
        failed = failed || futures == NULL || PyList_Append(futures, future) < 0;
    }
    else {
        PyObject *reports = SLOT(batch, off_reports);
        failed = reports == NULL || !PyList_Check(reports);
        if (!failed) {
            Py_ssize_t n = PyList_GET_SIZE(reports);
            PyObject *last = n ? PyList_GET_ITEM(reports, n - 1) : NULL;
            if (last != NULL && PyList_Check(last) && PyList_GET_SIZE(last) == 3 &&
                PyList_GET_ITEM(last, 0) == report) {
                Py_ssize_t count = PyLong_AsSsize_t(PyList_GET_ITEM(last, 2));
                PyObject *grown = count < 0 ? NULL : PyLong_FromSsize_t(count + 1);
                failed = grown == NULL || PyList_SetItem(last, 2, grown) < 0;
            }
            else {
                PyObject *run = PyList_New(3);
                failed = run == NULL;
                if (!failed) {
                    PyList_SET_ITEM(run, 0, Py_NewRef(report));
                    PyList_SET_ITEM(run, 1, Py_NewRef(index));
                    PyList_SET_ITEM(run, 2, PyLong_FromLong(1));
                    failed = PyList_Append(reports, run) < 0;
                    Py_DECREF(run);
                }
            }
        }
    }
    Py_DECREF(index);
    if (failed)
        return -1;
    PyObject *reserved = SLOT(batch, off_reserved);
    Py_ssize_t now = reserved ? PyLong_AsSsize_t(reserved) : -1;
    if (now == -1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a batch without its reserved bytes");
        return -1;
    }
    PyObject *grown = PyLong_FromSsize_t(now + size);
    if (grown == NULL)
        return -1;
    Py_SETREF(SLOT(batch, off_reserved), grown);
    return 0;
}

/* The accumulator's fast path: 1 done, 0 not taken (the caller takes the slow
 * path; nothing changed), -1 error. See the theory of operation at the top. */
static int
acc_append_fast(Accumulator *acc, PyObject *keys, PyObject *topic, PyObject *partition,
                PyObject *timestamp, PyObject *key, PyObject *value, PyObject *headers,
                Py_ssize_t size, PyObject *future, PyObject *report)
{
    if (acc->closing || acc->used + size > acc->buffer_limit || acc->lock == NULL)
        return 0;
    if (acc->pending != NULL && PyDict_CheckExact(acc->pending) && PyDict_GET_SIZE(acc->pending)) {
        int waiting = PyDict_Contains(acc->pending, topic);
        if (waiting)
            return waiting < 0 ? -1 : 0;
    }
    /* Only a lock of the threading module's own type: its non-blocking
     * acquire runs no Python code and keeps the GIL, which is what makes the
     * look-up below and the append one step for every other thread. */
    if (!Py_IS_TYPE(acc->lock, lock_type))
        return 0;
    PyObject *batch;
    if (open_batch(acc, keys, topic, partition, &batch) < 0)
        return -1;
    if (batch == NULL)
        return 0; /* a new batch: the accumulator's own path opens it */
    PyObject *got = PyObject_CallMethodOneArg(acc->lock, str_acquire, Py_False);
    if (got == NULL) {
        Py_DECREF(batch);
        return -1;
    }
    int locked = got == Py_True;
    Py_DECREF(got);
    if (!locked) {
        Py_DECREF(batch);
        return 0; /* held by the sender or a slow append: wait for it there */
    }
    /* Nothing ran between the look-up and the acquire: no Python code, no GIL
     * release, so the batch is still the open one (the sender seals batches
     * under this lock). */
    Builder *builder = (Builder *)SLOT(batch, off_builder);
    Py_INCREF(builder);
    int done = builder_append_record(builder, timestamp, key, value, headers);
    if (done == 1 && batch_attach(batch, builder, future, report, size) < 0)
        done = -1;
    if (done == 1) {
        acc->used += size;
        acc->incomplete += 1;
        acc->queued += 1;
    }
    Py_DECREF(builder);
    Py_DECREF(batch);
    PyObject *type, *val, *tb;
    PyErr_Fetch(&type, &val, &tb);
    PyObject *released = PyObject_CallMethodNoArgs(acc->lock, str_release);
    Py_XDECREF(released);
    if (released == NULL && type == NULL)
        return -1;
    if (released == NULL)
        PyErr_Clear();
    PyErr_Restore(type, val, tb);
    return done;
}

/* ------------------------------------------------------------------------- */
/* SinkCore: Sink.produce() and Sink.enqueue() in one C call                  */
/* ------------------------------------------------------------------------- */

#define RECORD_OVERHEAD 128 /* accumulator.RECORD_OVERHEAD */

typedef struct {
    PyObject_HEAD
    Accumulator *acc;
    PyObject *submit;       /* Sink._submit: the pure path, for anything unusual */
    PyObject *append;       /* RecordAccumulator.append: its slow path */
    PyObject *future_type;  /* DeliveryFuture */
    PyObject *wall_clock;   /* None: time.time, read here */
    PyObject *topics_ok;    /* set of checked topic names */
    PyObject *unreported;   /* the report of records enqueued without one */
    PyObject *partition;    /* the partitioner's call */
    PyObject *sticky;       /* the default partitioner's {topic: partition}, or None */
    PyObject *on_new_batch; /* or None */
    int murmur;             /* keyed records by murmur2 here (the default partitioner) */
    PyObject *sender;       /* None until the sender thread starts */
    PyObject *keys;         /* {topic: [(topic, 0), (topic, 1), ...]}: dict keys made once */
    char closed;
} SinkCore;

static int
core_traverse(SinkCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->acc);
    Py_VISIT(self->submit);
    Py_VISIT(self->append);
    Py_VISIT(self->future_type);
    Py_VISIT(self->wall_clock);
    Py_VISIT(self->topics_ok);
    Py_VISIT(self->unreported);
    Py_VISIT(self->partition);
    Py_VISIT(self->sticky);
    Py_VISIT(self->on_new_batch);
    Py_VISIT(self->sender);
    Py_VISIT(self->keys);
    return 0;
}

static int
core_clear(SinkCore *self)
{
    Py_CLEAR(self->acc);
    Py_CLEAR(self->submit);
    Py_CLEAR(self->append);
    Py_CLEAR(self->future_type);
    Py_CLEAR(self->wall_clock);
    Py_CLEAR(self->topics_ok);
    Py_CLEAR(self->unreported);
    Py_CLEAR(self->partition);
    Py_CLEAR(self->sticky);
    Py_CLEAR(self->on_new_batch);
    Py_CLEAR(self->sender);
    Py_CLEAR(self->keys);
    return 0;
}

static void
core_dealloc(SinkCore *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
core_init(SinkCore *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"accumulator", "submit",  "append",       "future_type",
                            "wall_clock",  "topics_ok", "unreported", "partition",
                            "sticky",      "on_new_batch", "murmur",  NULL};
    PyObject *acc, *submit, *append, *future_type, *wall_clock, *topics_ok, *unreported,
        *partition, *sticky, *on_new_batch;
    int murmur;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOOO!OOOOp:SinkCore", names,
                                     &AccumulatorType, &acc, &submit, &append, &future_type,
                                     &wall_clock, &PySet_Type, &topics_ok, &unreported,
                                     &partition, &sticky, &on_new_batch, &murmur))
        return -1;
    if (sticky != Py_None && !PyDict_CheckExact(sticky)) {
        PyErr_SetString(PyExc_TypeError, "sticky must be a dict or None");
        return -1;
    }
    Py_XSETREF(self->acc, (Accumulator *)Py_NewRef(acc));
    Py_XSETREF(self->submit, Py_NewRef(submit));
    Py_XSETREF(self->append, Py_NewRef(append));
    Py_XSETREF(self->future_type, Py_NewRef(future_type));
    Py_XSETREF(self->wall_clock, Py_NewRef(wall_clock));
    Py_XSETREF(self->topics_ok, Py_NewRef(topics_ok));
    Py_XSETREF(self->unreported, Py_NewRef(unreported));
    Py_XSETREF(self->partition, Py_NewRef(partition));
    Py_XSETREF(self->sticky, Py_NewRef(sticky));
    Py_XSETREF(self->on_new_batch, Py_NewRef(on_new_batch));
    Py_XSETREF(self->sender, Py_NewRef(Py_None));
    Py_XSETREF(self->keys, PyDict_New());
    if (self->keys == NULL)
        return -1;
    self->murmur = murmur;
    self->closed = 0;
    return 0;
}

/* Headers the fast path takes as they are: None, or a list or tuple of
 * (str, bytes | None) pairs. Adds their payload bytes to *payload. */
static int
plain_headers(PyObject *headers, Py_ssize_t *payload)
{
    if (headers == Py_None)
        return 1;
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers))
        return 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(headers);
    PyObject **items = PySequence_Fast_ITEMS(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            return 0;
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_CheckExact(name))
            return 0;
        if (value != Py_None && !PyBytes_CheckExact(value))
            return 0;
        /* record_size() counts the str's length, as the pure path does */
        *payload += PyUnicode_GET_LENGTH(name) + (value == Py_None ? 0 : PyBytes_GET_SIZE(value));
    }
    return 1;
}

/* Which partition for a record without one; -1 with an error set, -2 when the
 * topic's partition count is not known yet. */
static Py_ssize_t
choose(SinkCore *self, PyObject *topic, PyObject *key, PyObject *value, PyObject *count_obj,
       long count)
{
    if (key != Py_None && self->murmur) {
        uint32_t positive = murmur2_u((const unsigned char *)PyBytes_AS_STRING(key),
                                      PyBytes_GET_SIZE(key)) & 0x7FFFFFFFu;
        return (Py_ssize_t)(positive % (uint32_t)count);
    }
    if (key == Py_None && self->sticky != Py_None) {
        PyObject *current = PyDict_GetItemWithError(self->sticky, topic); /* borrowed */
        if (current == NULL && PyErr_Occurred())
            return -1;
        if (current != NULL && PyLong_CheckExact(current)) {
            long p = PyLong_AsLong(current);
            if (p >= 0 && p < count)
                return p;
            PyErr_Clear();
        }
    }
    PyObject *call[4] = {topic, key, value, count_obj};
    PyObject *chosen = PyObject_Vectorcall(self->partition, call, 4, NULL);
    if (chosen == NULL)
        return -1;
    Py_ssize_t p = PyLong_AsSsize_t(chosen);
    Py_DECREF(chosen);
    return p == -1 && PyErr_Occurred() ? -1 : p;
}

/* Whether the partition's open batch has room (for sticky partitioning). */
static int
has_room(SinkCore *self, PyObject *topic, PyObject *partition)
{
    PyObject *batch;
    if (open_batch(self->acc, self->keys, topic, partition, &batch) < 0)
        return -1;
    if (batch == NULL)
        return 0;
    int room =
        BATCH_HEADER_SIZE + ((Builder *)SLOT(batch, off_builder))->len < self->acc->batch_size;
    Py_DECREF(batch);
    return room;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static PyObject *
core_submit(SinkCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            int with_future)
{
    static const char *const names[] = {"topic",     "value",   "key",        "partition",
                                        "timestamp", "headers", "on_delivery"};
    PyObject *a[7] = {NULL, NULL, Py_None, Py_None, Py_None, Py_None, Py_None};
    if (nargs > 7) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 7 arguments",
                     with_future ? "produce" : "enqueue");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    if (kwnames) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            int found = -1;
            for (int i = 0; i < 7 && found < 0; i++) {
                const char *want = (i == 6 && !with_future) ? "report" : names[i];
                if (PyUnicode_CompareWithASCIIString(name, want) == 0)
                    found = i;
            }
            if (found < 0 || (found < nargs)) {
                if (found < 0)
                    PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R",
                                 with_future ? "produce" : "enqueue", name);
                else
                    PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument %R",
                                 with_future ? "produce" : "enqueue", name);
                return NULL;
            }
            a[found] = args[nargs + k];
        }
    }
    if (a[0] == NULL || a[1] == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() needs a topic and a value",
                     with_future ? "produce" : "enqueue");
        return NULL;
    }
    PyObject *topic = a[0], *value = a[1], *key = a[2], *partition = a[3], *timestamp = a[4],
             *headers = a[5], *last = a[6];
    PyObject *report = with_future ? NULL : (last == Py_None ? self->unreported : last);
    PyObject *on_delivery = with_future ? last : Py_None;
    Py_ssize_t payload = 0;
    long long explicit_partition = -1;
    int fast = !self->closed && self->sender != Py_None && PyUnicode_CheckExact(topic) &&
               (value == Py_None || PyBytes_CheckExact(value)) &&
               (key == Py_None || PyBytes_CheckExact(key)) &&
               (on_delivery == Py_None || PyCallable_Check(on_delivery));
    if (fast) {
        int known = PySet_Contains(self->topics_ok, topic);
        if (known < 0)
            return NULL;
        fast = known;
    }
    if (fast && timestamp != Py_None) {
        long long ts;
        fast = in_range(timestamp, 0, INT64_MAX, &ts);
    }
    if (fast && partition != Py_None)
        fast = in_range(partition, 0, PY_SSIZE_T_MAX, &explicit_partition);
    if (fast)
        fast = plain_headers(headers, &payload);
    if (!fast) {
        PyObject *call[8] = {topic, value, key, partition, timestamp, headers, on_delivery,
                             report ? report : Py_None};
        PyObject *result = PyObject_Vectorcall(self->submit, call, 8, NULL);
        if (result == NULL || with_future)
            return result;
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    if (headers != Py_None && PySequence_Fast_GET_SIZE(headers) == 0)
        headers = Py_None;
    payload += (key == Py_None ? 0 : PyBytes_GET_SIZE(key)) +
               (value == Py_None ? 0 : PyBytes_GET_SIZE(value));

    PyObject *ts_obj;
    if (timestamp != Py_None) {
        ts_obj = Py_NewRef(timestamp);
    }
    else if (self->wall_clock == Py_None) {
        ts_obj = PyLong_FromLongLong(now_ms());
    }
    else {
        /* int(wall_clock() * 1000), as the pure path computes it */
        PyObject *seconds = PyObject_CallNoArgs(self->wall_clock);
        PyObject *thousand = PyLong_FromLong(1000);
        PyObject *ms = seconds && thousand ? PyNumber_Multiply(seconds, thousand) : NULL;
        Py_XDECREF(seconds);
        Py_XDECREF(thousand);
        ts_obj = ms ? PyNumber_Long(ms) : NULL;
        Py_XDECREF(ms);
    }
    if (ts_obj == NULL)
        return NULL;
    PyObject *future = NULL, *part_obj = NULL, *result = NULL;
    if (with_future) {
        PyObject *call[2] = {ts_obj, on_delivery};
        future = PyObject_Vectorcall(self->future_type, call, on_delivery == Py_None ? 1 : 2,
                                     NULL);
        if (future == NULL)
            goto done;
    }
    int explicit = partition != Py_None;
    if (explicit) {
        part_obj = Py_NewRef(partition);
    }
    else {
        PyObject *counts = PyObject_GetAttr(self->sender, str_partition_counts);
        if (counts == NULL)
            goto done;
        PyObject *count_obj = PyDict_CheckExact(counts) ?
                                  PyDict_GetItemWithError(counts, topic) : NULL; /* borrowed */
        Py_XINCREF(count_obj);
        Py_DECREF(counts);
        if (count_obj == NULL && PyErr_Occurred())
            goto done;
        long count = count_obj ? PyLong_AsLong(count_obj) : 0;
        if (count == -1 && PyErr_Occurred()) {
            Py_DECREF(count_obj);
            goto done;
        }
        if (count > 0) {
            Py_ssize_t p = choose(self, topic, key, value, count_obj, count);
            if (p >= 0) {
                part_obj = PyLong_FromSsize_t(p);
                if (part_obj && key == Py_None && self->on_new_batch != Py_None) {
                    int room = has_room(self, topic, part_obj);
                    if (room < 0) {
                        Py_CLEAR(part_obj);
                    }
                    else if (!room) {
                        /* Sticky partitioning (KIP-480): a keyless record that would
                         * start a new batch moves on to another partition first. */
                        PyObject *call[3] = {topic, part_obj, count_obj};
                        PyObject *moved = PyObject_Vectorcall(self->on_new_batch, call, 3, NULL);
                        Py_CLEAR(part_obj);
                        if (moved != NULL) {
                            Py_DECREF(moved);
                            p = choose(self, topic, key, value, count_obj, count);
                            part_obj = p >= 0 ? PyLong_FromSsize_t(p) : NULL;
                        }
                    }
                }
            }
            if (part_obj == NULL) {
                Py_DECREF(count_obj);
                goto done;
            }
        }
        Py_XDECREF(count_obj);
    }
    if (part_obj != NULL && payload <= self->acc->max_record) {
        int done_fast = acc_append_fast(self->acc, self->keys, topic, part_obj, ts_obj, key,
                                        value, headers, payload + RECORD_OVERHEAD, future, report);
        if (done_fast < 0)
            goto done;
        if (done_fast) {
            result = future ? Py_NewRef(future) : Py_NewRef(Py_None);
            goto done;
        }
    }
    {
        /* The accumulator's own path: it waits for the lock, opens batches,
         * queues records for metadata, applies the buffer-full policy. */
        PyObject *tuple_headers = headers == Py_None ? PyTuple_New(0) : PySequence_Tuple(headers);
        if (tuple_headers == NULL)
            goto done;
        PyObject *call[9] = {topic,
                             part_obj ? part_obj : Py_None,
                             ts_obj,
                             key,
                             value,
                             tuple_headers,
                             future ? future : Py_None,
                             explicit ? Py_True : Py_False,
                             report ? report : Py_None};
        PyObject *appended = PyObject_Vectorcall(self->append, call, 9, NULL);
        Py_DECREF(tuple_headers);
        if (appended == NULL)
            goto done;
        Py_DECREF(appended);
        result = future ? Py_NewRef(future) : Py_NewRef(Py_None);
    }
done:
    Py_XDECREF(part_obj);
    Py_XDECREF(future);
    Py_DECREF(ts_obj);
    return result;
}

static PyObject *
core_produce(SinkCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return core_submit(self, args, nargs, kwnames, 1);
}

static PyObject *
core_enqueue(SinkCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return core_submit(self, args, nargs, kwnames, 0);
}

static PyObject *
core_reset(SinkCore *self, PyObject *args)
{
    PyObject *acc, *append, *topics_ok;
    if (!PyArg_ParseTuple(args, "O!OO!:reset", &AccumulatorType, &acc, &append, &PySet_Type,
                          &topics_ok))
        return NULL;
    Py_XSETREF(self->acc, (Accumulator *)Py_NewRef(acc));
    Py_XSETREF(self->append, Py_NewRef(append));
    Py_XSETREF(self->topics_ok, Py_NewRef(topics_ok));
    Py_XSETREF(self->sender, Py_NewRef(Py_None));
    Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
    {"reset", (PyCFunction)core_reset, METH_VARARGS,
     "reset(accumulator, append, topics_ok): start again on new state (a forked child)."},
    {"produce", (PyCFunction)(void (*)(void))core_produce, METH_FASTCALL | METH_KEYWORDS,
     "Sink.produce(), compiled."},
    {"enqueue", (PyCFunction)(void (*)(void))core_enqueue, METH_FASTCALL | METH_KEYWORDS,
     "Sink.enqueue(), compiled."},
    {NULL},
};

static PyMemberDef core_members[] = {
    {"sender", T_OBJECT, offsetof(SinkCore, sender), 0, "The sender, once started."},
    {"closed", T_BOOL, offsetof(SinkCore, closed), 0, "Set when the sink closes."},
    {NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kafka_sink._speedups.SinkCore",
    .tp_basicsize = sizeof(SinkCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Sink.produce() and Sink.enqueue() for the common case (see Sink._submit).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)core_init,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
    .tp_members = core_members,
};

/* ------------------------------------------------------------------------- */
/* plain_json: where orjson writes exactly what the stdlib's json writes      */
/* ------------------------------------------------------------------------- */

/* 1 when ``obj`` holds only None, bool, int, str, and lists, tuples and dicts
 * with str keys of those (exact types, nested at most 64 deep): values that
 * orjson and kafka_sink.serialization's stdlib encoder write byte for byte
 * alike. Floats are not (1e+16 against 1e16, NaN), nor anything written
 * through a default hook. */
static int
plain(PyObject *obj, int depth)
{
    if (obj == Py_None || obj == Py_True || obj == Py_False || PyUnicode_CheckExact(obj))
        return 1;
    if (PyLong_CheckExact(obj)) {
        int overflow;
        PyLong_AsLongLongAndOverflow(obj, &overflow);
        return !overflow;
    }
    if (depth >= 64)
        return 0;
    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
        PyObject **items = PySequence_Fast_ITEMS(obj);
        for (Py_ssize_t i = 0; i < n; i++)
            if (!plain(items[i], depth + 1))
                return 0;
        return 1;
    }
    if (PyDict_CheckExact(obj)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(obj, &pos, &key, &value))
            if (!PyUnicode_CheckExact(key) || !plain(value, depth + 1))
                return 0;
        return 1;
    }
    return 0;
}

static PyObject *
py_plain_json(PyObject *module, PyObject *obj)
{
    return PyBool_FromLong(plain(obj, 0));
}

/* ------------------------------------------------------------------------- */
/* configure()                                                                */
/* ------------------------------------------------------------------------- */

static PyObject *
py_configure(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"records", "invalid_argument", NULL};
    PyObject *module, *error;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:configure", names, &module, &error))
        return NULL;
    Py_XSETREF(records_module, Py_NewRef(module));
    Py_XSETREF(py_invalid_argument, Py_NewRef(error));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_VARARGS | METH_KEYWORDS,
     "Hand over the pure-Python helpers (called once by kafka_sink.protocol.records)."},
    {"bind_slots", py_bind_slots, METH_VARARGS,
     "bind_slots(ProducerBatch, DeliveryFuture): where their fields are (called once)."},
    {"plain_json", py_plain_json, METH_O,
     "plain_json(value) -> bool: orjson writes it as the stdlib's json does."},
    {"crc32c", py_crc32c, METH_VARARGS, "crc32c(data, crc=0) -> int: CRC-32C (Castagnoli)."},
    {"murmur2", py_murmur2, METH_O, "murmur2(data) -> int: Kafka's murmur2, signed 32-bit."},
    {"partition_for_key", (PyCFunction)(void (*)(void))py_partition_for_key, METH_FASTCALL,
     "partition_for_key(key, num_partitions) -> int"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "kafka_sink._speedups",
    .m_doc = "The compiled hot path of kafka_sink (see kafka_sink/_speedups.c).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot ? 0 : -1;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    crc_init();
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
    if (intern(&str_acquire, "acquire") || intern(&str_release, "release") ||
        intern(&str_index, "_index") || intern(&str_partition_counts, "partition_counts") ||
        intern(&str_compress, "compress") || intern(&str_record_fallback, "_record_bytes_checked") ||
        intern(&str_check_range, "_check_range") || intern(&str_builder_args, "_builder_args"))
        return NULL;
    if (PyType_Ready(&BuilderType) < 0 || PyType_Ready(&AccumulatorType) < 0 ||
        PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread == NULL)
        return NULL;
    lock_type = (PyTypeObject *)PyObject_GetAttrString(thread, "LockType");
    Py_DECREF(thread);
    if (lock_type == NULL || !PyType_Check(lock_type))
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "BatchBuilder", (PyObject *)&BuilderType) < 0 ||
        PyModule_AddObjectRef(module, "AccumulatorCore", (PyObject *)&AccumulatorType) < 0 ||
        PyModule_AddObjectRef(module, "SinkCore", (PyObject *)&CoreType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
