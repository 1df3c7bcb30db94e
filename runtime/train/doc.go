// Package train trains any generated model: a fit loop over a dataset with
// shuffling, learning-rate schedules, gradient clipping, validation metrics,
// early stopping, callbacks, checkpoints that lose nothing (every N steps,
// at the best validation score, at SIGINT or SIGTERM) and exact resume, a
// progress bar on terminals, a per-epoch summary, a metrics file and a PNG
// of the curves.
//
// A generated package's *Model satisfies Model as it is:
//
//	m := mlp.New()
//	data, _ := train.NewSlices(m.IO(), n, [][]float32{images}, [][]int32{labels})
//	res, err := train.Fit(ctx, m, data, train.Config[float32]{
//		Epochs:     5,
//		Schedule:   train.Cosine{LR: 1e-3},
//		Validation: test,
//		Checkpoint: "mlp.safetensors",
//	})
//
// Resume is exact: a run stopped after any step (by SIGINT, an error or a
// crash after a checkpoint) and resumed with Config.Resume ends with the
// parameters, bit for bit, of a run that was never stopped. Everything
// that decides a step is either a function of (seed, epoch, step) (the
// data order, the augmentation's random numbers, the learning rate) or is
// saved in the checkpoint (parameters, state, optimizer, the model's
// dropout counters, ReduceOnPlateau's and EarlyStopping's state, the
// epoch's running sums and Config.Carry).
package train
