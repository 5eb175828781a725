/*
 * lwm2m.codec._senml_cbor_fast: the usual SenML CBOR payload of a Read, decoded in one pass.
 *
 * LwM2M-TS-Core 1.1.1 §7.4.6 (SenML CBOR, RFC 8428 §6) for an object or an object instance
 * written the usual way: one definite-length array of definite-length maps; the first record
 * carries bn "/oid/iid/", every record n "rid" or "rid/riid" and the value label of the
 * resource's type (v 2, vs 3, vb 4, vd 8); instances, resources and resource instances in
 * ascending id order. The bytes go straight to the node tree of lwm2m.model.nodes, without
 * building cbor2's dicts first.
 *
 * This is an accelerator, not a decoder of its own: decode() returns None for anything else
 * (another shape, another order, a value that is not already of the resource's Python type, a
 * malformed item, trailing bytes ...), and the caller then runs the Python decoder, which is
 * the reference and names every error. So this code never raises for bad input; it only
 * raises what the Python C API raises (MemoryError). tests/codec/test_senml_cbor_fast.py
 * checks that a node returned here equals the Python decoder's, on generated payloads and on
 * random and mutated bytes, and builds this file with AddressSanitizer for a fuzz run.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* Kinds of resource type, as SenmlCborCodec._fast_info encodes them. */
enum { K_STRING = 0, K_INT = 1, K_UINT = 2, K_FLOAT = 3, K_BOOL = 4, K_OPAQUE = 5 };
/* SenML CBOR labels (RFC 8428 §6) */
enum { L_BN = -2, L_N = 0, L_V = 2, L_VS = 3, L_VB = 4, L_VD = 8 };
static const int64_t VALUE_LABEL[] = {L_VS, L_V, L_V, L_V, L_VB, L_VD};

#define MAX_ID 65535 /* ids are 0..65534 (lwm2m.constants.MAX_ID) */

/* The node classes and the offsets of their slots, from setup(). */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t off[3];
} NodeClass;

/* Per module object (multi-phase initialisation): each interpreter that imports the module
 * has its own, set up with its own node classes; nothing is shared between interpreters. */
typedef struct {
    NodeClass object, instance, single, multiple, rinstance;
    int ready;
} State;

#define STATE(module) ((State *)PyModule_GetState(module))

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

/* One CBOR head: the major type and its argument. -1 for what this path does not take
 * (indefinite lengths, reserved additional information, a truncated head). */
static int
read_head(Reader *r, int *major, uint64_t *arg, int *info)
{
    if (r->p >= r->end) {
        return -1;
    }
    uint8_t b = *r->p++;
    *major = b >> 5;
    *info = b & 0x1f;
    if (*info < 24) {
        *arg = *info;
        return 0;
    }
    if (*info > 27) {
        return -1;
    }
    size_t n = (size_t)1 << (*info - 24);
    if ((size_t)(r->end - r->p) < n) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | r->p[i];
    }
    r->p += n;
    *arg = v;
    return 0;
}

/* A scalar item (integer, string, simple or float) as a span; -1 for anything else. */
typedef struct {
    int major;
    int info;
    uint64_t arg;
    const uint8_t *data; /* strings: the bytes; floats: the bits, big-endian */
} Item;

static int
read_scalar(Reader *r, Item *item)
{
    if (read_head(r, &item->major, &item->arg, &item->info) < 0) {
        return -1;
    }
    switch (item->major) {
    case 0:
    case 1:
        return 0;
    case 2:
    case 3:
        if (item->arg > (uint64_t)(r->end - r->p)) {
            return -1;
        }
        item->data = r->p;
        r->p += item->arg;
        return 0;
    case 7:
        if (item->info == 20 || item->info == 21) {
            return 0;
        }
        if (item->info >= 25 && item->info <= 27) {
            item->data = r->p - ((size_t)1 << (item->info - 24));
            return 0;
        }
        return -1;
    default: /* arrays, maps, tags */
        return -1;
    }
}

/* Canonical decimal id (ASCII digits, no leading zero, below MAX_ID) in [s, s+len). */
static long
parse_id(const uint8_t *s, size_t len)
{
    if (len == 0 || len > 5 || (s[0] == '0' && len > 1)) {
        return -1;
    }
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v < MAX_ID ? v : -1;
}

/* n: "rid" or "rid/riid" (riid -1 when absent); -1 when not in that form. */
static int
parse_name(const Item *n, long *rid, long *riid)
{
    const uint8_t *s = n->data;
    size_t len = (size_t)n->arg;
    const uint8_t *slash = memchr(s, '/', len);
    if (slash == NULL) {
        *riid = -1;
        *rid = parse_id(s, len);
        return *rid < 0 ? -1 : 0;
    }
    *rid = parse_id(s, (size_t)(slash - s));
    *riid = parse_id(slash + 1, len - (size_t)(slash - s) - 1);
    return (*rid < 0 || *riid < 0) ? -1 : 0;
}

/* bn: "/oid/iid/"; -1 when not in that form. */
static int
parse_base(const Item *bn, long *oid, long *iid)
{
    const uint8_t *s = bn->data;
    size_t len = (size_t)bn->arg;
    if (len < 5 || s[0] != '/' || s[len - 1] != '/') {
        return -1;
    }
    const uint8_t *mid = memchr(s + 1, '/', len - 2);
    if (mid == NULL) {
        return -1;
    }
    *oid = parse_id(s + 1, (size_t)(mid - s - 1));
    *iid = parse_id(mid + 1, (size_t)(s + len - 1 - mid - 1));
    return (*oid < 0 || *iid < 0) ? -1 : 0;
}

/* A node of class c with its slots set (new references stolen, even on failure). */
static PyObject *
make_node(const NodeClass *c, PyObject *a, PyObject *b, PyObject *v)
{
    PyObject *node = c->type->tp_alloc(c->type, 0);
    if (node == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(v);
        return NULL;
    }
    *(PyObject **)((char *)node + c->off[0]) = a;
    *(PyObject **)((char *)node + c->off[1]) = b;
    if (v != NULL) {
        *(PyObject **)((char *)node + c->off[2]) = v;
    }
    return node;
}

/* A container node over a new dict: the node owns a mappingproxy of *dict; *dict is borrowed
 * from it. */
static PyObject *
make_container(const NodeClass *c, long id, PyObject *type, PyObject **dict)
{
    *dict = PyDict_New();
    if (*dict == NULL) {
        return NULL;
    }
    PyObject *proxy = PyDictProxy_New(*dict);
    Py_DECREF(*dict); /* the proxy keeps it */
    if (proxy == NULL) {
        return NULL;
    }
    PyObject *pid = PyLong_FromLong(id);
    if (pid == NULL) {
        Py_DECREF(proxy);
        return NULL;
    }
    if (type == NULL) {
        return make_node(c, pid, proxy, NULL);
    }
    Py_INCREF(type);
    return make_node(c, pid, type, proxy);
}

/* The value of a record as the Python type of its resource's kind; NULL with no exception
 * set when it is not already of that type (the Python path then converts or refuses). */
static PyObject *
make_value(int kind, const Item *v)
{
    switch (kind) {
    case K_STRING:
        if (v->major != 3) {
            return NULL;
        }
        {
            PyObject *s = PyUnicode_DecodeUTF8((const char *)v->data, (Py_ssize_t)v->arg, NULL);
            if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
            }
            return s;
        }
    case K_INT:
        if (v->arg > (uint64_t)INT64_MAX) {
            return NULL;
        }
        if (v->major == 0) {
            return PyLong_FromLongLong((long long)v->arg);
        }
        if (v->major == 1) {
            return PyLong_FromLongLong(-1 - (long long)v->arg);
        }
        return NULL;
    case K_UINT:
        return v->major == 0 ? PyLong_FromUnsignedLongLong(v->arg) : NULL;
    case K_FLOAT:
        if (v->major != 7 || v->info < 25) {
            return NULL;
        }
        {
            double d;
            if (v->info == 25) {
                d = PyFloat_Unpack2((const char *)v->data, 0);
            }
            else if (v->info == 26) {
                d = PyFloat_Unpack4((const char *)v->data, 0);
            }
            else {
                d = PyFloat_Unpack8((const char *)v->data, 0);
            }
            if (d == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            return PyFloat_FromDouble(d);
        }
    case K_BOOL:
        if (v->major != 7 || (v->info != 20 && v->info != 21)) {
            return NULL;
        }
        return PyBool_FromLong(v->info == 21);
    case K_OPAQUE:
        return v->major == 2 ? PyBytes_FromStringAndSize((const char *)v->data, (Py_ssize_t)v->arg)
                             : NULL;
    default:
        return NULL;
    }
}

/* Adds node under id to dict, stealing node. */
static int
put(PyObject *dict, long id, PyObject *node)
{
    if (node == NULL) {
        return -1;
    }
    PyObject *key = PyLong_FromLong(id);
    if (key == NULL) {
        Py_DECREF(node);
        return -1;
    }
    int rc = PyDict_SetItem(dict, key, node);
    Py_DECREF(key);
    Py_DECREF(node);
    return rc;
}

/* Adds a SingleResource or ResourceInstance (c) with id, type and value under id to dict,
 * stealing value; the id object is both the key and the node's id. */
static int
put_leaf(PyObject *dict, const NodeClass *c, long id, PyObject *type, PyObject *value)
{
    PyObject *pid = PyLong_FromLong(id);
    if (pid == NULL) {
        Py_DECREF(value);
        return -1;
    }
    Py_INCREF(pid);
    Py_INCREF(type);
    PyObject *node = make_node(c, pid, type, value);
    if (node == NULL) {
        Py_DECREF(pid);
        return -1;
    }
    int rc = PyDict_SetItem(dict, pid, node);
    Py_DECREF(pid);
    Py_DECREF(node);
    return rc;
}

/* decode(data, oid, want_iid, rinfo) -> ObjectNode | ObjectInstance | None */
static PyObject *
fast_decode(PyObject *self, PyObject *args)
{
    State *st = STATE(self);
    Py_buffer buf;
    long oid, want_iid;
    PyObject *rinfo;
    if (!PyArg_ParseTuple(args, "y*llO!", &buf, &oid, &want_iid, &PyDict_Type, &rinfo)) {
        return NULL;
    }
    if (!st->ready) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_RuntimeError, "setup() has not been called");
        return NULL;
    }
    Reader r = {(const uint8_t *)buf.buf, (const uint8_t *)buf.buf + buf.len};
    PyObject *instances = NULL; /* iid -> ObjectInstance (object paths) */
    PyObject *result = NULL;    /* the node to return: ObjectNode or the one ObjectInstance */
    PyObject *resources = NULL; /* borrowed: the current instance's dict */
    PyObject *values = NULL;    /* borrowed: the current multiple resource's dict */
    int failed = 0;             /* a Python error is set */
    long iid = -1, top = -1, last_multiple = -1, top_riid = -1;
    int major, info;
    uint64_t count;

    if (read_head(&r, &major, &count, &info) < 0 || major != 4 || count == 0 ||
        count > (uint64_t)(r.end - r.p)) {
        goto unusual;
    }
    if (want_iid < 0) {
        instances = PyDict_New();
        if (instances == NULL) {
            goto error;
        }
        PyObject *proxy = PyDictProxy_New(instances);
        if (proxy == NULL) {
            goto error;
        }
        PyObject *pid = PyLong_FromLong(oid);
        if (pid == NULL) {
            Py_DECREF(proxy);
            goto error;
        }
        result = make_node(&st->object, pid, proxy, NULL);
        if (result == NULL) {
            goto error;
        }
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t entries;
        if (read_head(&r, &major, &entries, &info) < 0 || major != 5 || entries < 2 ||
            entries > 3) {
            goto unusual;
        }
        Item bn = {0}, n = {0}, v = {0};
        int64_t vlabel = 0;
        int have = 0; /* bits: 1 bn, 2 n, 4 a value */
        for (uint64_t e = 0; e < entries; e++) {
            Item key;
            if (read_scalar(&r, &key) < 0 || key.major > 1 || key.arg > 16) {
                goto unusual;
            }
            int64_t label = key.major == 0 ? (int64_t)key.arg : -1 - (int64_t)key.arg;
            Item *slot;
            int bit;
            if (label == L_BN) {
                slot = &bn;
                bit = 1;
            }
            else if (label == L_N) {
                slot = &n;
                bit = 2;
            }
            else if (label == L_V || label == L_VS || label == L_VB || label == L_VD) {
                slot = &v;
                bit = 4;
                vlabel = label;
            }
            else {
                goto unusual;
            }
            if ((have & bit) || read_scalar(&r, slot) < 0) {
                goto unusual;
            }
            have |= bit;
        }
        if (!(have & 2) || !(have & 4) || n.major != 3 || (uint64_t)(2 + (have & 1)) != entries) {
            goto unusual;
        }
        if (have & 1) { /* a new instance starts */
            long boid, biid;
            if (bn.major != 3 || parse_base(&bn, &boid, &biid) < 0 || boid != oid ||
                biid <= iid || (want_iid >= 0 && (biid != want_iid || iid >= 0))) {
                goto unusual;
            }
            iid = biid;
            top = last_multiple = -1;
            PyObject *inst = make_container(&st->instance, iid, NULL, &resources);
            if (inst == NULL) {
                goto error;
            }
            if (want_iid >= 0) {
                result = inst;
            }
            else if (put(instances, iid, inst) < 0) {
                goto error;
            }
        }
        else if (iid < 0) {
            goto unusual; /* a record before the first bn */
        }
        long rid, riid;
        if (parse_name(&n, &rid, &riid) < 0) {
            goto unusual;
        }
        PyObject *key = PyLong_FromLong(rid);
        if (key == NULL) {
            goto error;
        }
        PyObject *def = PyDict_GetItemWithError(rinfo, key); /* borrowed */
        Py_DECREF(key);
        if (def == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            goto unusual; /* not a resource of this object */
        }
        if (!PyTuple_CheckExact(def) || PyTuple_GET_SIZE(def) != 3) {
            PyErr_SetString(PyExc_TypeError, "rinfo values are (multiple, kind, type)");
            goto error;
        }
        int multiple = PyTuple_GET_ITEM(def, 0) == Py_True;
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(def, 1));
        PyObject *rtype = PyTuple_GET_ITEM(def, 2);
        if (kind == -1 && PyErr_Occurred()) {
            goto error;
        }
        if (kind < K_STRING || kind > K_OPAQUE || multiple != (riid >= 0) ||
            vlabel != VALUE_LABEL[kind]) {
            goto unusual;
        }
        PyObject *value = make_value((int)kind, &v);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            goto unusual;
        }
        if (!multiple) {
            if (rid <= top) {
                Py_DECREF(value);
                goto unusual;
            }
            top = rid;
            if (put_leaf(resources, &st->single, rid, rtype, value) < 0) {
                goto error;
            }
            continue;
        }
        if (rid != last_multiple || rid != top) { /* a multiple resource starts */
            if (rid <= top) {
                Py_DECREF(value);
                goto unusual;
            }
            top = last_multiple = rid;
            top_riid = -1;
            PyObject *mr = make_container(&st->multiple, rid, rtype, &values);
            if (put(resources, rid, mr) < 0) {
                Py_DECREF(value);
                goto error;
            }
        }
        if (riid <= top_riid) {
            Py_DECREF(value);
            goto unusual;
        }
        top_riid = riid;
        if (put_leaf(values, &st->rinstance, riid, rtype, value) < 0) {
            goto error;
        }
    }
    if (r.p != r.end) {
        goto unusual; /* trailing bytes: the Python path names them */
    }
    PyBuffer_Release(&buf);
    Py_XDECREF(instances);
    return result;

error:
    failed = 1;
unusual:
    PyBuffer_Release(&buf);
    Py_XDECREF(instances);
    Py_XDECREF(result);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The offsets of a node class's object slots, in field order, from its member descriptors. */
static int
node_class(NodeClass *c, PyObject *cls, const char *const *names, int count)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a node class is expected");
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    for (int i = 0; i < count; i++) {
        PyObject *d = PyObject_GetAttrString(cls, names[i]);
        if (d == NULL) {
            return -1;
        }
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type);
        if (ok) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            ok = m->type == T_OBJECT_EX && !(m->flags & READONLY) &&
                 m->offset >= (Py_ssize_t)sizeof(PyObject) &&
                 m->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize;
            c->off[i] = m->offset;
        }
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name, names[i]);
            return -1;
        }
    }
    Py_INCREF(cls);
    Py_XSETREF(c->type, type);
    return 0;
}

/* setup(ObjectNode, ObjectInstance, SingleResource, MultipleResource, ResourceInstance) */
static PyObject *
fast_setup(PyObject *self, PyObject *args)
{
    PyObject *on, *oi, *sr, *mr, *ri;
    if (!PyArg_ParseTuple(args, "OOOOO", &on, &oi, &sr, &mr, &ri)) {
        return NULL;
    }
    static const char *const container[] = {"id", "instances"};
    static const char *const instance[] = {"id", "resources"};
    static const char *const multiple[] = {"id", "type", "instances"};
    static const char *const value[] = {"id", "type", "value"};
    State *st = STATE(self);
    if (node_class(&st->object, on, container, 2) < 0 ||
        node_class(&st->instance, oi, instance, 2) < 0 ||
        node_class(&st->single, sr, value, 3) < 0 ||
        node_class(&st->multiple, mr, multiple, 3) < 0 ||
        node_class(&st->rinstance, ri, value, 3) < 0) {
        st->ready = 0;
        return NULL;
    }
    st->ready = 1;
    Py_RETURN_NONE;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = STATE(module);
    if (st != NULL) {
        Py_VISIT(st->object.type);
        Py_VISIT(st->instance.type);
        Py_VISIT(st->single.type);
        Py_VISIT(st->multiple.type);
        Py_VISIT(st->rinstance.type);
    }
    return 0;
}

static int
module_clear(PyObject *module)
{
    State *st = STATE(module);
    if (st != NULL) {
        st->ready = 0;
        Py_CLEAR(st->object.type);
        Py_CLEAR(st->instance.type);
        Py_CLEAR(st->single.type);
        Py_CLEAR(st->multiple.type);
        Py_CLEAR(st->rinstance.type);
    }
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyMethodDef methods[] = {
    {"decode", fast_decode, METH_VARARGS,
     "decode(data, oid, want_iid, rinfo) -> node or None: the usual SenML CBOR object or\n"
     "instance payload (want_iid -1 for an object); None for anything else."},
    {"setup", fast_setup, METH_VARARGS,
     "setup(ObjectNode, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "lwm2m.codec._senml_cbor_fast",
    "The usual SenML CBOR Read payload decoded in C (see lwm2m.codec.senml_cbor).",
    sizeof(State),
    methods,
    slots,
    module_traverse,
    module_clear,
    module_free,
};

PyMODINIT_FUNC
PyInit__senml_cbor_fast(void)
{
    return PyModuleDef_Init(&module);
}
