/// Encoders (values to time-major spike or current trains), decoders (network output over time to
/// per-sample values) and losses.
namespace SnnFunc

open System
open SnnFunc.RandomBits

/// Encoders: [B; N] values to time-major [T; B; N] inputs. They prepare data (concrete tensors).
[<RequireQualifiedAccess>]
module Encode =

    let private values (op: string) (x: Tensor) =
        if isNull x then
            invalidArg "x" $"%s{op}: x is null"

        if x.Rank <> 2 then
            invalidArg "x" $"%s{op}: expects values [B; N], got shape %s{Shape.format x.ShapeRef}"

        x.ToDoubleArray()

    let private isFinite (v: float) =
        not (Double.IsNaN v || Double.IsInfinity v)

    /// Rejects the first value (in row-major order) for which `ok` fails, showing it in full and
    /// at its flat index: a NaN or an infinity must not turn silently into "no spike" or t = 0.
    let private checkValues (op: string) (allowed: string) (ok: float -> bool) (v: float[]) =
        match Array.tryFindIndex (ok >> not) v with
        | Some i -> invalidArg "x" $"%s{op}: values must be %s{allowed}, got %.17g{v[i]} at flat index %d{i}"
        | None -> ()

    let private checkSteps (op: string) (steps: int) =
        if steps <= 0 then
            invalidArg "steps" $"%s{op}: steps must be positive, got %d{steps}"

    /// A time or rate parameter: positive and finite (NaN fails `> 0`).
    let private checkPositive (op: string) (name: string) (value: float) =
        if not (value > 0.0 && isFinite value) then
            invalidArg name $"%s{op}: %s{name} must be positive and finite, got %.17g{value}"

    /// One spike per value at the time given by `timeOf` (seconds; None or beyond the window: no
    /// spike). The values are checked by the caller.
    let private spikesAt (steps: int) (dt: float) (x: Tensor) (v: float[]) (timeOf: float -> float option) =
        let m = v.Length
        let out = Array.zeroCreate<float> (steps * m)

        v
        |> Array.iteri (fun j u ->
            match timeOf u with
            | Some t ->
                let step = Math.Round(t / dt)

                if step >= 0.0 && step < float steps then
                    out[int step * m + j] <- 1.0
            | None -> ())

        Tensor.FromArray(out, steps, x.ShapeRef[0], x.ShapeRef[1]).Convert x.DType

    /// Linear latency (time-to-first-spike) coding: value u in [0, 1] spikes once at u · tLate
    /// (or at (1 - u) · tLate when `inverted`), rounded to the nearest step.
    let latency (steps: int) (dt: float) (tLate: float) (inverted: bool) (x: Tensor) : Tensor =
        let op = "Encode.latency"
        checkSteps op steps
        checkPositive op "dt" dt
        checkPositive op "tLate" tLate
        let v = values op x
        checkValues op "in [0, 1]" (fun u -> u >= 0.0 && u <= 1.0) v
        spikesAt steps dt x v (fun u -> Some((if inverted then 1.0 - u else u) * tLate))

    /// Logarithmic latency coding (Cramer et al. 2022): a current x charging a leaky membrane of time
    /// constant tau reaches the threshold theta at t = tau ln(x / (x - theta)); finite values
    /// x <= theta never reach it and do not spike.
    let logLatency (steps: int) (dt: float) (tau: float) (theta: float) (x: Tensor) : Tensor =
        let op = "Encode.logLatency"
        checkSteps op steps
        checkPositive op "dt" dt
        checkPositive op "tau" tau
        checkPositive op "theta" theta
        let v = values op x
        checkValues op "finite" isFinite v

        spikesAt steps dt x v (fun u ->
            if u > theta then
                Some(tau * log (u / (u - theta)))
            else
                None)

    /// Poisson (rate) coding: at each step, a spike with probability rate · u · dt (u in [0, 1];
    /// probabilities above 1 are clipped to 1).
    let poisson (key: Key) (steps: int) (dt: float) (maxRate: float) (x: Tensor) : Tensor =
        let op = "Encode.poisson"
        checkSteps op steps
        checkPositive op "dt" dt

        if not (maxRate >= 0.0 && isFinite maxRate) then
            invalidArg "maxRate" $"%s{op}: maxRate must be non-negative and finite, got %.17g{maxRate}"

        values op x |> checkValues op "in [0, 1]" (fun u -> u >= 0.0 && u <= 1.0)
        let p = (x * (maxRate * dt)).Minimum(Tensor.Scalar(1.0, x.DType))
        let u = Random.uniformAs x.DType key (Array.append [| steps |] x.ShapeRef)
        u.Lt(p.Unsqueeze 0)

    /// Current injection: the values as a constant input current at every step. Concrete values
    /// must be finite (a traced input, as in a learned encoding, is passed through).
    let current (steps: int) (x: Tensor) : Tensor =
        let op = "Encode.current"
        checkSteps op steps

        if isNull x then
            invalidArg "x" $"%s{op}: x is null"

        if x.IsConcrete then
            checkValues op "finite" isFinite (x.ToDoubleArray())

        x.Unsqueeze(0).BroadcastTo(Array.append [| steps |] x.ShapeRef)

/// Decoders: time-major [T; B; N] outputs to [B; N].
[<RequireQualifiedAccess>]
module Decode =

    /// Decoders reduce the leading time axis, which a scalar lacks (the reduction would fail with
    /// an axis error that does not say what was expected).
    let private timeMajor (op: string) (t: Tensor) =
        if isNull t then
            invalidArg "z" $"%s{op}: the input is null"

        if t.Rank < 1 then
            invalidArg "z" $"%s{op}: expects time-major input [T; ...] with a time axis, got shape %s{Shape.format t.ShapeRef}"

    /// The largest value over time (for a membrane readout).
    let maxOverTime (v: Tensor) : Tensor =
        timeMajor "Decode.maxOverTime" v
        v.Max 0

    /// The number of spikes over time.
    let spikeCount (z: Tensor) : Tensor =
        timeMajor "Decode.spikeCount" z
        z.Sum 0

    /// The mean over time.
    let meanOverTime (v: Tensor) : Tensor =
        timeMajor "Decode.meanOverTime" v
        v.Mean 0

    /// Time of the first spike in seconds (T · dt where a neuron never spikes). Not differentiable.
    let firstSpikeTime (dt: float) (z: Tensor) : Tensor =
        if not (dt > 0.0 && not (Double.IsInfinity dt)) then
            invalidArg "dt" $"Decode.firstSpikeTime: dt must be positive and finite, got %.17g{dt}"

        timeMajor "Decode.firstSpikeTime" z
        let steps = float z.ShapeRef[0]
        let first = (z.ArgMax 0).Convert z.DType
        let spiked = Ad.stopGradient (z.Max 0)
        Tensor.Where(spiked, first, Tensor.Scalar(steps, z.DType)) * dt

/// Losses and metrics.
[<RequireQualifiedAccess>]
module Loss =

    let private checkLabels (op: string) (logits: Tensor) (labels: int[]) =
        if logits.Rank <> 2 then
            invalidArg "logits" $"%s{op}: expects [B; classes], got shape %s{Shape.format logits.ShapeRef}"

        if isNull labels || labels.Length <> logits.ShapeRef[0] then
            let n = if isNull labels then 0 else labels.Length
            invalidArg "labels" $"%s{op}: %d{n} labels for a batch of %d{logits.ShapeRef[0]}"

    /// Mean negative log-likelihood of integer labels under log-probabilities [B; C].
    let nll (logProbs: Tensor) (labels: int[]) : Tensor =
        checkLabels "Loss.nll" logProbs labels
        let picked = Tensor.OneHot(labels, logProbs.ShapeRef[1], logProbs.DType)
        -(logProbs * picked).Sum(1).Mean()

    /// Mean cross-entropy of logits [B; C] against integer labels (log-softmax + NLL).
    let crossEntropy (logits: Tensor) (labels: int[]) : Tensor = nll (logits.LogSoftmax 1) labels

    /// Mean squared error.
    let mse (prediction: Tensor) (target: Tensor) : Tensor = (prediction - target).Square().Mean()

    /// Firing-rate regulariser: mean over neurons of (spikes per sample - target)², for spikes [T; B; N].
    let firingRate (target: float) (z: Tensor) : Tensor =
        (z.Sum(0).Mean(0) - target).Square().Mean()

    /// Upper-bound firing-rate regulariser (Cramer et al.): mean over samples of relu(spikes per
    /// neuron - limit)², penalising only neurons that fire more than `limit` times per sample.
    let firingRateAbove (limit: float) (z: Tensor) : Tensor =
        (z.Sum(0) - limit).Relu().Square().Mean()

    /// Fraction of rows whose largest logit is at the label.
    let accuracy (logits: Tensor) (labels: int[]) : float =
        checkLabels "Loss.accuracy" logits labels
        let predicted = logits.ArgMax(1).ToInt32Array()

        let correct =
            Array.fold2 (fun acc p l -> if p = l then acc + 1 else acc) 0 predicted labels

        float correct / float (max 1 labels.Length)
