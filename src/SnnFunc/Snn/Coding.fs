/// Encoders (values to time-major spike or current trains), decoders (network output over time to
/// per-sample values) and losses.
namespace SnnFunc

open System
open SnnFunc.RandomBits

/// Encoders: [B; N] values to time-major [T; B; N] inputs. They prepare data (concrete tensors).
[<RequireQualifiedAccess>]
module Encode =

    let private values (op: string) (x: Tensor) =
        if x.Rank <> 2 then
            invalidArg "x" $"%s{op}: expects values [B; N], got shape %s{Shape.format x.ShapeRef}"

        x.ToDoubleArray()

    /// One spike per value at the time given by `timeOf` (seconds; None or beyond the window: no spike).
    let private spikesAt (op: string) (steps: int) (dt: float) (x: Tensor) (timeOf: float -> float option) =
        if steps <= 0 then
            invalidArg "steps" $"%s{op}: steps must be positive, got %d{steps}"

        if not (dt > 0.0) then
            invalidArg "dt" $"%s{op}: dt must be positive, got %g{dt}"

        let v = values op x
        let m = v.Length
        let out = Array.zeroCreate<float> (steps * m)

        v
        |> Array.iteri (fun j u ->
            match timeOf u with
            | Some t ->
                let step = int (Math.Round(t / dt))

                if step >= 0 && step < steps then
                    out[step * m + j] <- 1.0
            | None -> ())

        Tensor.FromArray(out, steps, x.ShapeRef[0], x.ShapeRef[1]).Convert x.DType

    /// Linear latency (time-to-first-spike) coding: value u in [0, 1] spikes once at u · tLate
    /// (or at (1 - u) · tLate when `inverted`), rounded to the nearest step.
    let latency (steps: int) (dt: float) (tLate: float) (inverted: bool) (x: Tensor) : Tensor =
        spikesAt "Encode.latency" steps dt x (fun u ->
            if Double.IsNaN u || u < 0.0 || u > 1.0 then
                invalidArg "x" $"Encode.latency: values must lie in [0, 1], got %.17g{u}"

            Some((if inverted then 1.0 - u else u) * tLate))

    /// Logarithmic latency coding (Cramer et al. 2022): a current x charging a leaky membrane of time
    /// constant tau reaches the threshold theta at t = tau ln(x / (x - theta)); values x <= theta
    /// never reach it and do not spike.
    let logLatency (steps: int) (dt: float) (tau: float) (theta: float) (x: Tensor) : Tensor =
        if not (tau > 0.0 && theta > 0.0) then
            invalidArg "tau" $"Encode.logLatency: tau and theta must be positive, got %g{tau} and %g{theta}"

        spikesAt "Encode.logLatency" steps dt x (fun u ->
            if u > theta then
                Some(tau * log (u / (u - theta)))
            else
                None)

    /// Poisson (rate) coding: at each step, a spike with probability rate · u · dt (u in [0, 1]).
    let poisson (key: Key) (steps: int) (dt: float) (maxRate: float) (x: Tensor) : Tensor =
        let v = values "Encode.poisson" x

        for u in v do
            if Double.IsNaN u || u < 0.0 || u > 1.0 then
                invalidArg "x" $"Encode.poisson: values must lie in [0, 1], got %.17g{u}"

        let p = (x * (maxRate * dt)).Minimum(Tensor.Scalar(1.0, x.DType))
        let u = Random.uniformAs x.DType key (Array.append [| steps |] x.ShapeRef)
        u.Lt(p.Unsqueeze 0)

    /// Current injection: the values as a constant input current at every step.
    let current (steps: int) (x: Tensor) : Tensor =
        x.Unsqueeze(0).BroadcastTo(Array.append [| steps |] x.ShapeRef)

/// Decoders: time-major [T; B; N] outputs to [B; N].
[<RequireQualifiedAccess>]
module Decode =

    /// The largest value over time (for a membrane readout).
    let maxOverTime (v: Tensor) : Tensor = v.Max 0

    /// The number of spikes over time.
    let spikeCount (z: Tensor) : Tensor = z.Sum 0

    /// The mean over time.
    let meanOverTime (v: Tensor) : Tensor = v.Mean 0

    /// Time of the first spike in seconds (T · dt where a neuron never spikes). Not differentiable.
    let firstSpikeTime (dt: float) (z: Tensor) : Tensor =
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
