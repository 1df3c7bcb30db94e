//go:build mpi && cgo

package mpi

/*
#cgo pkg-config: ompi-c
#include <mpi.h>

static int bpg_init(int *rank, int *size) {
	int flag = 0, provided = 0, rc;
	MPI_Initialized(&flag);
	if (!flag) {
		// Serialized: Go may run a goroutine's calls on different threads,
		// never two at once.
		rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
		if (rc != MPI_SUCCESS) return rc;
		if (provided < MPI_THREAD_SERIALIZED) return -1;
		MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	}
	rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
	if (rc != MPI_SUCCESS) return rc;
	return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static int bpg_sum_f32(float *buf, int n) { return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }
static int bpg_sum_f64(double *buf, int n) { return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); }
static int bpg_bcast_f32(float *buf, int n, int root) { return MPI_Bcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD); }
static int bpg_bcast_f64(double *buf, int n, int root) { return MPI_Bcast(buf, n, MPI_DOUBLE, root, MPI_COMM_WORLD); }
static void bpg_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int bpg_finalize(void) { return MPI_Finalize(); }

static void bpg_error_string(int code, char *buf, int *len) {
	if (MPI_Error_string(code, buf, len) != MPI_SUCCESS) *len = 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

func initWorld() (rank, size int, err error) {
	var r, s C.int
	if rc := C.bpg_init(&r, &s); rc != C.MPI_SUCCESS {
		if rc == -1 {
			return 0, 0, errors.New("mpi: this MPI library cannot serve calls from several threads one at a time (MPI_THREAD_SERIALIZED)")
		}
		return 0, 0, fmt.Errorf("mpi: init: %w", mpiError(rc))
	}
	return int(r), int(s), nil
}

// chunks calls f on pieces of n elements that fit MPI's int counts.
func chunks(n int, f func(lo, k int) C.int) error {
	for lo := 0; lo < n; lo += math.MaxInt32 {
		if rc := f(lo, min(n-lo, math.MaxInt32)); rc != C.MPI_SUCCESS {
			return mpiError(rc)
		}
	}
	return nil
}

func sumFloat32(b []float32) error {
	return chunks(len(b), func(lo, k int) C.int {
		return C.bpg_sum_f32((*C.float)(unsafe.Pointer(&b[lo])), C.int(k))
	})
}

func sumFloat64(b []float64) error {
	return chunks(len(b), func(lo, k int) C.int {
		return C.bpg_sum_f64((*C.double)(unsafe.Pointer(&b[lo])), C.int(k))
	})
}

func broadcastFloat32(b []float32, root int) error {
	return chunks(len(b), func(lo, k int) C.int {
		return C.bpg_bcast_f32((*C.float)(unsafe.Pointer(&b[lo])), C.int(k), C.int(root))
	})
}

func broadcastFloat64(b []float64, root int) error {
	return chunks(len(b), func(lo, k int) C.int {
		return C.bpg_bcast_f64((*C.double)(unsafe.Pointer(&b[lo])), C.int(k), C.int(root))
	})
}

func abort(code int) { C.bpg_abort(C.int(code)) }

func finalize() error {
	if rc := C.bpg_finalize(); rc != C.MPI_SUCCESS {
		return mpiError(rc)
	}
	return nil
}

// mpiError is MPI's message for an error code.
func mpiError(rc C.int) error {
	var buf [C.MPI_MAX_ERROR_STRING]C.char
	var n C.int
	C.bpg_error_string(rc, &buf[0], &n)
	if n <= 0 {
		return fmt.Errorf("MPI error %d", int(rc))
	}
	return errors.New(C.GoStringN(&buf[0], n))
}
