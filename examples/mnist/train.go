package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/backpropgen/backpropgen/examples/internal/mnistdata"
	"github.com/backpropgen/backpropgen/runtime"
)

// Config holds the training settings (the command-line flags).
type Config struct {
	Model      string  // mlp, lenet5 or seqmnist
	Epochs     int     // total epochs, counting those restored by Resume
	LR         float32 // Adam's peak learning rate
	Schedule   string  // "cosine" or "constant"
	Clip       float64 // maximum global gradient norm (ClipGradNorm); 0: no clipping
	Shift      int     // random shifts of the training images, in pixels; 0: none
	Seed       uint64  // initialization and shuffling seed
	Checkpoint string  // written after every epoch; "" for none
	Resume     bool    // start from Checkpoint
	Quiet      bool    // no progress bar
}

func (c Config) validate() error {
	if _, err := archByName(c.Model); err != nil {
		return err
	}
	if c.Epochs < 1 {
		return fmt.Errorf("-epochs %d: want at least 1", c.Epochs)
	}
	if !(c.LR > 0) || math.IsInf(float64(c.LR), 0) {
		return fmt.Errorf("-lr %v: want a positive learning rate", c.LR)
	}
	if c.Schedule != "cosine" && c.Schedule != "constant" {
		return fmt.Errorf("-schedule %q: want cosine or constant", c.Schedule)
	}
	if c.Shift < 0 || c.Shift > 8 {
		return fmt.Errorf("-shift %d: want 0 (no augmentation) to 8 pixels", c.Shift)
	}
	if !(c.Clip >= 0) || math.IsInf(c.Clip, 0) {
		return fmt.Errorf("-clip %v: want a maximum gradient norm > 0, or 0 for no clipping", c.Clip)
	}
	if c.Resume && c.Checkpoint == "" {
		return errors.New("-resume needs a -checkpoint file")
	}
	return nil
}

// Epoch is the outcome of one training epoch.
type Epoch struct {
	Epoch        int           // 1-based
	TrainLoss    float64       // mean loss over the epoch's training examples
	TestAccuracy float64       // fraction of test images classified correctly
	Time         time.Duration // wall time: training, evaluation and checkpoint
}

// Result is the outcome of Train.
type Result struct {
	Model        *Net
	Resumed      int     // epochs restored from the checkpoint (0 without Resume)
	Epochs       []Epoch // the epochs trained by this call
	TestAccuracy float64 // after the last epoch
}

// Train trains a model on trainSet for cfg.Epochs epochs (continuing from
// the checkpoint with cfg.Resume), evaluating on testSet after each one.
// It prints one line per epoch and the final accuracy on stdout and a
// progress bar on stderr (unless cfg.Quiet).
func Train(cfg Config, trainSet, testSet *mnistdata.Set, stdout, stderr io.Writer) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if trainSet.N == 0 || testSet.N == 0 {
		return nil, fmt.Errorf("empty data set: %d training and %d test images", trainSet.N, testSet.N)
	}
	arch, _ := archByName(cfg.Model) // validated
	m := arch.New()
	m.Init(cfg.Seed)
	opt := runtime.NewAdam[float32](len(m.Params), cfg.LR)
	res := &Result{Model: m}
	if cfg.Resume {
		done, err := resume(m, opt, cfg.Checkpoint)
		if err != nil {
			return nil, err
		}
		res.Resumed = done
		fmt.Fprintf(stdout, "resumed from %s after epoch %d\n", cfg.Checkpoint, done)
		if done >= cfg.Epochs {
			fmt.Fprintf(stdout, "the checkpoint already has %d epochs (-epochs %d): nothing to train\n", done, cfg.Epochs)
		}
	}

	batch := m.Batch
	stepsPerEpoch := (trainSet.N + batch - 1) / batch
	lr := schedule(cfg, stepsPerEpoch*cfg.Epochs)
	perm := make([]int, trainSet.N)
	for epoch := res.Resumed + 1; epoch <= cfg.Epochs; epoch++ {
		start := time.Now()
		shuffle(perm, cfg.Seed, epoch)
		augment := rand.New(rand.NewPCG(cfg.Seed^0x5bd1e995, uint64(epoch)))
		bar := newProgress(stderr, fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs), stepsPerEpoch, cfg.Quiet)
		var lossSum float64
		for step := range stepsPerEpoch {
			rows := perm[step*batch : min((step+1)*batch, trainSet.N)]
			n := len(rows)
			for i, r := range rows {
				dst := m.X[i*mnistdata.Pixels : (i+1)*mnistdata.Pixels]
				if cfg.Shift > 0 {
					shifted(dst, trainSet.Image(r), augment, cfg.Shift)
				} else {
					copy(dst, trainSet.Image(r))
				}
				m.Y[i] = trainSet.Labels[r]
			}
			opt.LR = lr(opt.StepCount())
			loss, err := trainStep(m, n, opt, cfg.Clip)
			if err != nil {
				bar.clear()
				return nil, fmt.Errorf("epoch %d, step %d: %w", epoch, step+1, err)
			}
			lossSum += float64(loss) * float64(n)
			bar.update(step+1, lossSum/float64(min((step+1)*batch, trainSet.N)))
		}
		bar.clear()

		acc, err := accuracy(m, testSet)
		if err != nil {
			return nil, err
		}
		if cfg.Checkpoint != "" {
			meta := map[string]string{
				"model":    m.Name,
				"epoch":    strconv.Itoa(epoch),
				"seed":     strconv.FormatUint(cfg.Seed, 10),
				"lr":       strconv.FormatFloat(float64(cfg.LR), 'g', -1, 32),
				"schedule": cfg.Schedule,
			}
			if cfg.Clip > 0 {
				meta["clip"] = strconv.FormatFloat(cfg.Clip, 'g', -1, 64)
			}
			if err := m.SaveCheckpoint(cfg.Checkpoint, opt, meta); err != nil {
				return nil, err
			}
		}
		e := Epoch{Epoch: epoch, TrainLoss: lossSum / float64(trainSet.N), TestAccuracy: acc, Time: time.Since(start)}
		res.Epochs = append(res.Epochs, e)
		fmt.Fprintf(stdout, "epoch %d/%d  train loss %.4f  test accuracy %.2f%%  time %.1fs\n",
			e.Epoch, cfg.Epochs, e.TrainLoss, 100*e.TestAccuracy, e.Time.Seconds())
	}

	if len(res.Epochs) > 0 {
		res.TestAccuracy = res.Epochs[len(res.Epochs)-1].TestAccuracy
	} else { // the checkpoint already had cfg.Epochs epochs
		var err error
		if res.TestAccuracy, err = accuracy(m, testSet); err != nil {
			return nil, err
		}
	}
	epochs := max(cfg.Epochs, res.Resumed)
	fmt.Fprintf(stdout, "test accuracy %.2f%% after %d epoch%s\n", 100*res.TestAccuracy, epochs, plural(epochs))
	return res, nil
}

// trainStep is m.TrainStep, with the gradients' global norm clipped to
// clip before the optimizer step when clip > 0. Like TrainStep, it returns
// an error and leaves the parameters as they were when the loss (or the
// gradient norm) is not finite.
func trainStep(m *Net, n int, opt runtime.Optimizer[float32], clip float64) (float32, error) {
	if clip == 0 {
		return m.TrainStep(n, opt)
	}
	m.ZeroGrad()
	loss, err := m.Forward(n)
	if err != nil {
		return 0, err
	}
	if l := float64(loss); math.IsNaN(l) || math.IsInf(l, 0) {
		return loss, nonFinite(m, n, fmt.Sprintf("loss is %v", loss))
	}
	m.Backward(n)
	if norm := runtime.ClipGradNorm(m.Grads, clip); math.IsNaN(norm) || math.IsInf(norm, 0) {
		return loss, nonFinite(m, n, fmt.Sprintf("gradient norm is %v", norm))
	}
	opt.Step(m.Params, m.Grads)
	return loss, nil
}

// nonFinite explains a non-finite loss or gradient as the generated
// TrainStep does: a bad input value, or diverged parameters.
func nonFinite(m *Net, n int, what string) error {
	x := m.X[:n*mnistdata.Pixels]
	if i := runtime.FirstNonFinite(x); i >= 0 {
		return fmt.Errorf("%s: %s because input row %d, element %d is %v: clean or skip that row; parameters not updated",
			m.Name, what, i/mnistdata.Pixels, i%mnistdata.Pixels, x[i])
	}
	if i := runtime.FirstNonFinite(m.Params); i >= 0 {
		return fmt.Errorf("%s: %s because parameter element %d is %v: training diverged; restore a checkpoint and lower the learning rate or clip gradients",
			m.Name, what, i, m.Params[i])
	}
	return fmt.Errorf("%s: %s although inputs and parameters are finite: training diverged; lower -lr or -clip; parameters not updated", m.Name, what)
}

// resume loads the parameters and Adam state from path and returns the
// number of epochs already trained.
func resume(m *Net, opt *runtime.Adam[float32], path string) (int, error) {
	if err := checkResumable(path, m.Name); err != nil {
		return 0, err
	}
	meta, err := m.LoadCheckpoint(path, opt)
	if err != nil {
		return 0, fmt.Errorf("-resume: %w", err)
	}
	epoch, err := strconv.Atoi(meta["epoch"])
	if err != nil || epoch < 0 {
		return 0, fmt.Errorf("-resume: checkpoint %s has no valid \"epoch\" metadata (%q): it was not written by this program", path, meta["epoch"])
	}
	return epoch, nil
}

// checkResumable explains a missing checkpoint for -resume, or one that
// holds another model than name. Other problems (a corrupt file, say) are
// left to LoadCheckpoint, which explains them in detail.
func checkResumable(path, name string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("-resume: checkpoint %s does not exist: train without -resume first, or point -checkpoint at an existing file", path)
	}
	meta, err := readMetadata(path)
	if err != nil {
		return nil
	}
	got := meta["model"]
	if got == "" {
		got = meta[runtime.MetaModel]
	}
	if got != "" && got != name {
		return fmt.Errorf("-resume: checkpoint %s was written by -model %s, not %s: resume it with -model %s, or point -checkpoint at a %s checkpoint",
			path, got, name, got, name)
	}
	return nil
}

// readMetadata returns the __metadata__ of the safetensors file at path,
// reading only its header.
func readMetadata(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	const maxHeader = 100 << 20
	if n > maxHeader {
		return nil, fmt.Errorf("%s: header of %d bytes: not a safetensors file", path, n)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(f, header); err != nil {
		return nil, err
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, err
	}
	return h.Meta, nil
}

// schedule returns the learning rate for each optimizer step. Cosine decays
// from cfg.LR to 0 over total steps; it depends only on the step count, so a
// resumed run continues the same curve.
func schedule(cfg Config, total int) func(step int64) float32 {
	if cfg.Schedule == "constant" {
		return func(int64) float32 { return cfg.LR }
	}
	return func(step int64) float32 {
		frac := min(float64(step)/float64(total), 1)
		return float32(float64(cfg.LR) * 0.5 * (1 + math.Cos(math.Pi*frac)))
	}
}

// shuffle fills perm with a permutation of 0..len-1 that depends only on
// (seed, epoch), so a resumed run sees the same order as an uninterrupted one.
func shuffle(perm []int, seed uint64, epoch int) {
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, 0x5EED0000+uint64(epoch)))
	rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
}

// accuracy returns the fraction of set that m classifies correctly,
// predicting in batches of m.Batch (the last one partial).
func accuracy(m *Net, set *mnistdata.Set) (float64, error) {
	classes := make([]int32, m.Batch)
	correct := 0
	for lo := 0; lo < set.N; lo += m.Batch {
		n := min(m.Batch, set.N-lo)
		copy(m.X[:n*mnistdata.Pixels], set.Images[lo*mnistdata.Pixels:(lo+n)*mnistdata.Pixels])
		if err := m.Predict(n, classes); err != nil {
			return 0, fmt.Errorf("evaluating test images %d..%d: %w", lo, lo+n-1, err)
		}
		for i, c := range classes[:n] {
			if c == set.Labels[lo+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(set.N), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// shifted writes into dst the 28×28 image src moved by up to max pixels in
// each direction (drawn from rng), zeros filling in: the usual augmentation
// of MNIST, which makes a convolutional network's test accuracy less
// dependent on where a digit sits.
func shifted(dst, src []float32, rng *rand.Rand, max int) {
	const side = 28
	dy, dx := rng.IntN(2*max+1)-max, rng.IntN(2*max+1)-max
	clear(dst)
	for y := range side {
		sy := y - dy
		if sy < 0 || sy >= side {
			continue
		}
		x0, x1 := 0, side
		if dx > 0 {
			x0 = dx
		} else {
			x1 = side + dx
		}
		copy(dst[y*side+x0:y*side+x1], src[sy*side+x0-dx:sy*side+x1-dx])
	}
}
