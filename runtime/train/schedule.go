package train

import (
	"fmt"
	"math"
)

// A Schedule gives the learning rate of every step of a run. Steps count
// from 0; total is the run's number of steps (epochs × steps per epoch).
type Schedule interface {
	At(step, total int64) float64
}

// Constant is a fixed learning rate.
type Constant struct{ LR float64 }

// At returns LR.
func (c Constant) At(step, total int64) float64 { return c.LR }

// StepDecay multiplies the rate by Gamma every Every steps (PyTorch's
// StepLR, in steps).
type StepDecay struct {
	LR    float64
	Every int64
	Gamma float64
}

// At returns LR·Gamma^⌊step/Every⌋.
func (s StepDecay) At(step, total int64) float64 {
	return s.LR * math.Pow(s.Gamma, float64(step/max(s.Every, 1)))
}

// Cosine decays the rate from LR to Min along half a cosine over the run
// (PyTorch's CosineAnnealingLR with T_max the whole run).
type Cosine struct{ LR, Min float64 }

// At returns Min + (LR-Min)·(1+cos(π·step/total))/2.
func (c Cosine) At(step, total int64) float64 {
	if total <= 0 {
		return c.LR
	}
	return c.Min + (c.LR-c.Min)*0.5*(1+math.Cos(math.Pi*float64(step)/float64(total)))
}

// WarmupCosine rises linearly from 0 to LR over Warmup steps, then decays
// to Min along half a cosine over the rest of the run.
type WarmupCosine struct {
	LR, Min float64
	Warmup  int64
}

// At returns the rate of step.
func (w WarmupCosine) At(step, total int64) float64 {
	if step < w.Warmup {
		return w.LR * float64(step+1) / float64(w.Warmup)
	}
	return Cosine{w.LR, w.Min}.At(step-w.Warmup, total-w.Warmup)
}

// ReduceOnPlateau multiplies the rate by Factor whenever the monitored
// validation metric (Fit's Monitor) has not improved by MinDelta for
// Patience epochs, down to Min (Keras' ReduceLROnPlateau). Its state is
// saved in checkpoints, so a resumed run reduces when an uninterrupted one
// would.
type ReduceOnPlateau struct {
	LR, Factor, Min, MinDelta float64
	Patience                  int

	// The state: the current rate, the best value seen, the epochs since.
	Rate    float64 `json:"rate"`
	Best    float64 `json:"best"`
	Wait    int     `json:"wait"`
	Started bool    `json:"started"`
}

// At returns the current rate.
func (r *ReduceOnPlateau) At(step, total int64) float64 {
	if r.Rate == 0 {
		r.Rate = r.LR
	}
	return r.Rate
}

// observe takes the epoch's value of the monitored metric (lower is better
// when minimize).
func (r *ReduceOnPlateau) observe(v float64, minimize bool) {
	if r.Rate == 0 {
		r.Rate = r.LR
	}
	if !r.Started || improved(v, r.Best, r.MinDelta, minimize) {
		r.Started, r.Best, r.Wait = true, v, 0
		return
	}
	r.Wait++
	if r.Wait >= max(r.Patience, 1) {
		r.Rate, r.Wait = max(r.Rate*r.Factor, r.Min), 0
	}
}

// validate reports a schedule that cannot give a rate.
func validate(s Schedule) error {
	switch s := s.(type) {
	case nil:
		return fmt.Errorf("train: no learning-rate schedule; set Config.Schedule (e.g. train.Constant{LR: 1e-3})")
	case *ReduceOnPlateau:
		if !(s.LR > 0) {
			return fmt.Errorf("train: ReduceOnPlateau LR %v, want a rate > 0", s.LR)
		}
		if !(s.Factor > 0 && s.Factor < 1) {
			return fmt.Errorf("train: ReduceOnPlateau factor %v, want 0 < factor < 1", s.Factor)
		}
	case StepDecay:
		if s.Every < 1 || !(s.Gamma > 0) {
			return fmt.Errorf("train: StepDecay every %d steps by %v, want every ≥ 1 and a gamma > 0", s.Every, s.Gamma)
		}
	}
	return nil
}

// improved reports whether v is better than best by more than delta.
func improved(v, best, delta float64, minimize bool) bool {
	if minimize {
		return v < best-delta
	}
	return v > best+delta
}
