package ir

// StepKind says how an op runs on one position of its sequences at a time,
// the way a generated Decoder runs a model (derive's Decode): the time axis
// is axis 1 of every batched shape, (N, T, ...), and a step computes the
// (N, 1, ...) slice of every batched result at one position.
type StepKind int

const (
	// StepNone: the op mixes the positions of a sequence (a product over
	// the time axis, non-causal attention, a recurrence), or it has not
	// been taught to step; a model with it gets no Decoder.
	StepNone StepKind = iota
	// StepRows: each position's result comes from the same position of the
	// batched arguments and the whole of the unbatched ones (a dense layer
	// reads its whole weight; layer norm, embedding, element-wise ops).
	StepRows
	// StepBroadcast: element-wise with broadcasting; an unbatched argument
	// whose axis aligned with the time axis spans it (a learned position
	// table added to the sequence) is read at the step's position only.
	StepBroadcast
	// StepCached: the result at a position reads the earlier positions too
	// (causal attention): its step keeps what it needs of them (the keys
	// and values) in a cache the Decoder owns, filled one position a step.
	StepCached
)

func stepRows(*Node) StepKind      { return StepRows }
func stepBroadcast(*Node) StepKind { return StepBroadcast }
