/// Losses and metrics over first-spike times, max voltages and spike counts of event-driven runs.
namespace SnnFunc

open System

/// Losses (rank-0, differentiable) and metrics for event-driven outputs. Times are seconds; a
/// silent neuron's first-spike time is +inf (as `EventBuffer.firstSpikeTimes` gives it).
///
/// Silent neurons: the time losses take `tMax` (e.g. the run's end) and treat every time above it,
/// +inf included, as tMax — jaxsnn's policy of a silent neuron "firing at t_max". The loss and its
/// gradient stay finite; a clipped time has zero gradient (the exact gradient is blind to spikes
/// that do not exist, eventprop.md §3.6). The clip is a `where`, so no 0 · inf = NaN reaches the
/// gradient.
[<RequireQualifiedAccess>]
module EventLoss =

    let private fail (op: string) (name: string) (message: string) : 'a = invalidArg name $"%s{op}: %s{message}"

    let private checkPositive (op: string) (name: string) (v: float) =
        if not (v > 0.0 && Double.IsFinite v) then
            fail op name $"%s{name} must be positive and finite, got %.17g{v}"

    let private checkTimes (op: string) (t: Tensor) =
        if isNull t then
            fail op "firstTimes" "the times are null"

        if t.Rank <> 2 then
            fail op "firstTimes" $"expects first-spike times [B; classes], got shape %s{Shape.format t.ShapeRef}"

        if not t.DType.IsFloat then
            fail op "firstTimes" $"expects Float32 or Float64 times, got %s{t.DType.Name}"

    let private checkLabels (op: string) (t: Tensor) (labels: int[]) =
        if isNull labels then
            fail op "labels" "the labels are null"

        if labels.Length <> t.ShapeRef[0] then
            fail op "labels" $"%d{labels.Length} labels for a batch of %d{t.ShapeRef[0]}"

        let c = t.ShapeRef[1]

        match Array.tryFindIndex (fun l -> l < 0 || l >= c) labels with
        | Some i -> fail op "labels" $"label %d{labels[i]} at position %d{i} is outside [0, %d{c})"
        | None -> ()

    /// Times above tMax (and +inf) replaced by tMax, with no gradient there.
    let private clip (tMax: float) (t: Tensor) =
        Tensor.Where(t.Gt tMax, Tensor.Scalar(tMax, t.DType), t)

    /// The checked per-sample TTFS cross-entropy terms [B] (see ttfsCrossEntropy) and the labels'
    /// one-hot [B; C].
    let private ttfsPerSample (op: string) (tau0: float) (tau1: float) (alpha: float) (tMax: float) (firstTimes: Tensor) (labels: int[]) =
        checkPositive op "tau0" tau0
        checkPositive op "tau1" tau1
        checkPositive op "tMax" tMax

        if not (alpha >= 0.0 && Double.IsFinite alpha) then
            fail op "alpha" $"alpha must be finite and >= 0, got %.17g{alpha}"

        checkTimes op firstTimes
        checkLabels op firstTimes labels
        let t = clip tMax firstTimes
        let picked = Tensor.OneHot(labels, t.ShapeRef[1], t.DType)
        let tLabel = (t * picked).Sum 1
        let ce = -((-t / tau0).LogSoftmax 1 * picked).Sum 1
        ce + alpha * ((tLabel / tau1).Exp() - 1.0), picked

    /// Wunderlich & Pehle's time-to-first-spike cross-entropy (eventprop.md §2.4d), the mean over
    /// the batch of −log softmax(−t / τ0)_label + α (exp(t_label / τ1) − 1), for first-spike times
    /// [B; C] and B labels; times above tMax (silent: +inf) count as tMax (see the module).
    /// Per sample, ∂/∂t_i = −softmax_i / τ0, plus 1/τ0 + (α/τ1) e^{t_l/τ1} at the label (then
    /// divided by B). W&P's Yin-Yang values: τ0 = 0.5 ms, τ1 = 6.4 ms, α = 3e-3.
    let ttfsCrossEntropy (tau0: float) (tau1: float) (alpha: float) (tMax: float) (firstTimes: Tensor) (labels: int[]) : Tensor =
        let perSample, _ =
            ttfsPerSample "EventLoss.ttfsCrossEntropy" tau0 tau1 alpha tMax firstTimes labels

        perSample.Mean()

    /// ttfsCrossEntropy with Wunderlich and Pehle's policy for a silent label (their
    /// `loss_layer.py`): a sample whose label neuron has not fired by tMax adds nothing, neither
    /// loss nor gradient, so it no longer pushes the other outputs later. The sum over the fired
    /// samples is divided by the whole batch B, so each fired sample weighs as in ttfsCrossEntropy.
    /// With ttfsCrossEntropy, the samples with a silent label drove every output later and silent
    /// (YinYangEvent: 4.5 % of the training labels and 3.8 % of all outputs silent after 40
    /// epochs, the loss rising from 0.3 to 2.2); this loss cannot revive a silent label either, so
    /// pair it with weight bumping.
    let ttfsCrossEntropySkipSilent (tau0: float) (tau1: float) (alpha: float) (tMax: float) (firstTimes: Tensor) (labels: int[]) : Tensor =
        let perSample, picked =
            ttfsPerSample "EventLoss.ttfsCrossEntropySkipSilent" tau0 tau1 alpha tMax firstTimes labels
        // 1 where the label fired (its time is at most tMax), 0 where it is silent (a 0/1 mask
        // times the one-hot, so no inf · 0); piecewise constant, so no gradient.
        let silent = firstTimes.Gt(tMax).Convert firstTimes.DType
        let fired = 1.0 - (silent * picked).Sum 1
        (perSample * fired).Mean()

    /// Mean squared error between first-spike times (above tMax, or silent: tMax) and targets
    /// (broadcastable), in seconds².
    let spikeTimeMse (tMax: float) (target: Tensor) (firstTimes: Tensor) : Tensor =
        let op = "EventLoss.spikeTimeMse"
        checkPositive op "tMax" tMax

        if isNull target || isNull firstTimes then
            fail op "firstTimes" "an argument is null"

        (clip tMax firstTimes - target).Square().Mean()

    /// Host: the fraction of samples whose earliest first spike is the label's: the argmin of
    /// [B; C] first-spike times. A sample counts as wrong when every neuron is silent (+inf) or
    /// when two or more neurons share the earliest time (a tie decides nothing).
    let ttfsAccuracy (firstTimes: Tensor) (labels: int[]) : float =
        let op = "EventLoss.ttfsAccuracy"
        checkTimes op firstTimes
        checkLabels op firstTimes labels

        if not firstTimes.IsConcrete then
            fail op "firstTimes" "needs concrete times (a metric, outside transforms)"

        let b, c = firstTimes.ShapeRef[0], firstTimes.ShapeRef[1]
        let v = firstTimes.ToDoubleArray()

        let correct =
            Seq.init b (fun s ->
                let row = v[s * c .. s * c + c - 1]
                let m = Array.min row

                Double.IsFinite m
                && (row |> Array.filter (fun x -> x = m) |> Array.length) = 1
                && row[labels[s]] = m)
            |> Seq.filter id
            |> Seq.length

        float correct / float (max 1 b)

    /// Cross-entropy over the maximum voltages [B; C] of a leaky-integrator readout (W&P's MNIST
    /// loss): mean of −log softmax(vmax)_label.
    let maxVoltageCrossEntropy (maxVoltages: Tensor) (labels: int[]) : Tensor =
        let op = "EventLoss.maxVoltageCrossEntropy"

        if isNull maxVoltages || maxVoltages.Rank <> 2 then
            let shown =
                if isNull maxVoltages then
                    "null"
                else
                    Shape.format maxVoltages.ShapeRef

            fail op "maxVoltages" $"expects max voltages [B; classes], got %s{shown}"

        checkLabels op maxVoltages labels
        Loss.crossEntropy maxVoltages labels

    /// Activity regulariser on spike counts [..., N] (e.g. `EventBuffer.spikeCounts`): the mean
    /// over all entries of relu(lower − count)² + relu(count − upper)², penalising neurons that
    /// fire fewer than `lower` or more than `upper` times per sample. Counts from a buffer carry
    /// no gradient (a count is piecewise constant in the times); in an EventProp run the penalty
    /// must enter the adjoint at each spike (genn_eventprop, eventprop.md §3.6).
    let spikeCountPenalty (lower: float) (upper: float) (counts: Tensor) : Tensor =
        let op = "EventLoss.spikeCountPenalty"

        if not (lower >= 0.0 && upper >= lower && Double.IsFinite lower) then
            fail op "upper" $"needs 0 <= lower <= upper with lower finite, got lower %.17g{lower} and upper %.17g{upper}"

        if isNull counts || not counts.DType.IsFloat then
            fail op "counts" "expects float spike counts"

        let below = (lower - counts).Relu().Square()
        let above = (counts - upper).Relu().Square()
        (below + above).Mean()
