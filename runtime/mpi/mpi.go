// Package mpi trains across processes and machines over MPI: Comm is
// MPI_COMM_WORLD as a runtime/train.Comm, for train.NewParallel's
// ParallelConfig.Comm.
//
// MPI does the communication; this package is a thin cgo layer over the
// calls training needs (init, rank, size, all-reduce, broadcast, abort,
// finalize), built only with the mpi tag so that the default build stays
// pure Go:
//
//	apt-get install openmpi-bin libopenmpi-dev
//	go build -tags mpi -o mnist ./examples/mnist
//	mpirun -np 2 ./mnist -workers 1
//
// Without the tag, Init returns ErrNotBuilt.
package mpi

import (
	"errors"
	"fmt"
	"os"
)

// ErrNotBuilt is Init's error in a build without the mpi tag.
var ErrNotBuilt = errors.New("mpi: this program was built without MPI: install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and build it with -tags mpi")

// Comm is MPI_COMM_WORLD: every process started by one mpirun.
type Comm struct {
	rank, size int
}

// Rank is this process's rank, 0 to Size()-1.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of processes.
func (c *Comm) Size() int { return c.size }

// Launched reports whether this process was started by an MPI launcher
// (mpirun, mpiexec, srun), from the variables they set.
func Launched() bool {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// Init initializes MPI (once per process) and returns MPI_COMM_WORLD.
// Errors of later calls are returned, not fatal (MPI_ERRORS_RETURN); a
// process that dies makes the launcher stop the others.
func Init() (*Comm, error) {
	rank, size, err := initWorld()
	if err != nil {
		return nil, err
	}
	return &Comm{rank: rank, size: size}, nil
}

// SumFloat32 replaces buf on every rank by its sum over the ranks.
func (c *Comm) SumFloat32(buf []float32) error { return c.check("all-reduce", sumFloat32(buf)) }

// SumFloat64 replaces buf on every rank by its sum over the ranks.
func (c *Comm) SumFloat64(buf []float64) error { return c.check("all-reduce", sumFloat64(buf)) }

// BroadcastFloat32 copies rank root's buf to every rank's.
func (c *Comm) BroadcastFloat32(buf []float32, root int) error {
	return c.check("broadcast", broadcastFloat32(buf, root))
}

// BroadcastFloat64 copies rank root's buf to every rank's.
func (c *Comm) BroadcastFloat64(buf []float64, root int) error {
	return c.check("broadcast", broadcastFloat64(buf, root))
}

// Abort stops every process of the job with the exit code (MPI_Abort): for
// an error on one rank that the others cannot know of.
func (c *Comm) Abort(code int) { abort(code) }

// Finalize ends MPI; call it once, after the last collective.
func (c *Comm) Finalize() error { return c.check("finalize", finalize()) }

func (c *Comm) check(what string, err error) error {
	if err != nil {
		return fmt.Errorf("mpi: rank %d of %d: %s: %w", c.rank, c.size, what, err)
	}
	return nil
}
