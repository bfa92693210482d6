/// The event kernels: the simulation (EventForward), its tangent along the trajectory
/// (EventTangent, linear) and the transposed tangent (EventTangentT, linear in the output
/// cotangents: the Solver adjoint or EventProp). Forward mode applies EventTangent; reverse mode
/// transposes it into EventTangentT; vmap folds its axis into the sample axis (one kernel call).
///
/// Arguments (the "slots" of EventSim.Layout): per source the times [B; cap] (float), neurons
/// [B; cap] and counts [B] (Int32); then each population's parameters [N] (shared) or [B; N] (per
/// sample), each projection's weight [in; out] or [B; in; out] and its delay (rank 0, [in] or
/// [in; out], or with a leading [B]). Outputs: per spiking population times [B; Capacity], neurons,
/// count, overflow; per readout the maximum [B; N] and its time [B; N] (its time carries no tangent).
namespace SnnFunc

open System
open System.Threading.Tasks
open SnnFunc.Kernels
open SnnFunc.EventSim
open SnnFunc.EventSimulator

module internal EventKernelHelpers =
    let nOutSpk (l: Layout) = l.Spiking.Length
    let nOutRo (l: Layout) = l.Readouts.Length

    /// Slots of differentiable float data: source times and parameters (not the Int32 slots, not
    /// the forced spikes, whose derivatives come from the model's crossing rule).
    let isFloatSlot (l: Layout) (slot: int) =
        slot < l.NSources || (slot >= 3 * l.NSources && slot < l.ForcedStart)

    /// Slots of per-sample event data [B; ...]: the sources' and the forced spikes'.
    let isEventSlot (l: Layout) (slot: int) =
        slot < 3 * l.NSources || slot >= l.ForcedStart

    let f64 (t: Tensor) =
        match t.Storage with
        | Storage.F64 a -> a
        | Storage.F32 a -> Array.map float a
        | Storage.I32 _ -> invalidOp "Events: expected float data"

    let i32 (t: Tensor) =
        match t.Storage with
        | Storage.I32 a -> a
        | _ -> invalidOp "Events: expected Int32 data"

    let batchOf (args: Tensor[]) = args[0].ShapeRef[0]

    let slotData (l: Layout) (perSample: bool[]) (args: Tensor[]) =
        {
            Data =
                Array.init l.NSlots (fun k ->
                    if isFloatSlot l k && not (isNull args[k]) then
                        f64 args[k]
                    else
                        null)
            PerSample = perSample
            Size = l.SlotSize
        }

    let inputs (l: Layout) (args: Tensor[]) =
        let s = l.NSources

        {
            Times = Array.init s (fun k -> f64 args[k])
            Neurons = Array.init s (fun k -> i32 args[s + k])
            Counts = Array.init s (fun k -> i32 args[2 * s + k])
            Cap = Array.init s (fun k -> args[k].ShapeRef[1])
            ForcedTimes = Array.init l.NForced (fun f -> f64 args[l.ForcedStart + f])
            ForcedNeurons = Array.init l.NForced (fun f -> i32 args[l.ForcedStart + l.NForced + f])
            ForcedCounts = Array.init l.NForced (fun f -> i32 args[l.ForcedStart + 2 * l.NForced + f])
            ForcedCap = Array.init l.NForced (fun f -> args[l.ForcedStart + f].ShapeRef[1])
        }

    let toTensor (dtype: DType) (shape: int[]) (a: float[]) =
        match dtype with
        | Float64 -> Tensor.FromStorage(shape, Storage.F64 a)
        | _ -> Tensor.FromStorage(shape, Storage.F32(Array.map float32 a))

    /// The number of sample chunks of a call: fixed, so that the sums over samples do not depend on
    /// the thread count or on scheduling.
    [<Literal>]
    let private Chunks = 8

    /// The number of sample chunks of a call that sums nothing over samples (the forward pass):
    /// more, smaller chunks than Chunks, so that the threads finish together when samples differ
    /// in cost (a trained network's patterns do by 2x and more).
    [<Literal>]
    let private ForwardChunks = 64

    /// Runs `work` for every sample on up to MaxThreads threads. The samples are cut into at most
    /// `maxChunks` contiguous chunks, each run with its own state from `make` (threads take chunks
    /// from a shared counter), and `finish` is called on the chunks' states in chunk order after
    /// all of them ran: whatever the states accumulate (gradients over samples) is summed in the
    /// same order in every call, so that a run is reproducible bit for bit.
    let private forSamplesIn (maxChunks: int) (batch: int) (make: unit -> 'W) (work: 'W -> int -> unit) (finish: 'W -> unit) =
        let chunks = max 1 (min maxChunks batch)

        let bounds c =
            c * batch / chunks, (c + 1) * batch / chunks

        let states: 'W[] = Array.zeroCreate chunks

        let runChunk c =
            let w = make ()
            let lo, hi = bounds c

            for b in lo .. hi - 1 do
                work w b

            states[c] <- w

        let threads = max 1 (min Parallelism.MaxThreads chunks)

        if threads = 1 then
            for c in 0 .. chunks - 1 do
                runChunk c
        else
            let next = ref -1

            try
                Parallel.For(
                    0,
                    threads,
                    fun _ ->
                        let mutable c = Threading.Interlocked.Increment &next.contents

                        while c < chunks do
                            runChunk c
                            c <- Threading.Interlocked.Increment &next.contents
                )
                |> ignore
            with :? AggregateException as e when e.InnerExceptions.Count >= 1 ->
                Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw()

        for w in states do
            finish w

    /// forSamples in Chunks chunks, for the calls that sum over samples.
    let forSamples batch make work finish =
        forSamplesIn Chunks batch make work finish

    /// forSamples in ForwardChunks chunks, for the calls that only write per-sample outputs.
    let forSamplesForward batch make work =
        forSamplesIn ForwardChunks batch make work ignore

    /// The float dtype of the run (that of the first source's times).
    let dtypeOf (args: Tensor[]) = args[0].DType

    /// Folds a vmap axis of size s into the sample axis of a per-sample argument [B; ...].
    let foldSample (s: int) (batched: bool) (x: Tensor) =
        let shape = x.Shape

        if batched then
            x.Reshape(Array.append [| shape[0] * shape[1] |] shape[2..])
        else
            x.Unsqueeze(0).BroadcastTo(Array.append [| s |] shape).Reshape(Array.append [| s * shape[0] |] shape[1..])

    /// Folds a vmap axis into a parameter argument: shared [P] or per sample [B; P] before; the
    /// result is per sample [S·B; P] unless it was shared and not batched (then it stays).
    let foldParam (s: int) (batch: int) (perSample: bool) (batched: bool) (x: Tensor) =
        if batched then
            if perSample then
                foldSample s true x, true
            else
                let shape = x.Shape // [S; P...]
                let p = shape[1..]

                x.Unsqueeze(1).BroadcastTo(Array.concat [ [| s; batch |]; p ]).Reshape(Array.append [| s * batch |] p), true
        elif perSample then
            foldSample s false x, true
        else
            x, false

    /// A shared parameter made per sample [B; P].
    let perSampleOf (batch: int) (x: Tensor) =
        x.Unsqueeze(0).BroadcastTo(Array.append [| batch |] x.Shape)

    /// [S·B; ...] back to [S; B; ...].
    let unfold (s: int) (x: Tensor) =
        let shape = x.Shape
        x.Reshape(Array.append [| s; shape[0] / s |] shape[1..])

    /// Simulates every sample of `args` and calls `each` with the sample's log.
    let simulate
        (l: Layout)
        (sd: SlotData)
        (inp: Inputs)
        (batch: int)
        (out: Outputs voption)
        (makeExtra: unit -> 'X)
        (each: Simulator -> 'X -> int -> unit)
        (finish: 'X -> unit)
        =
        forSamples
            batch
            (fun () -> Simulator(l), makeExtra ())
            (fun (sim, x) b ->
                checkParams l sd b
                sim.Run(sd, b, inp, out)
                each sim x b)
            (fun (_, x) -> finish x)

open EventKernelHelpers

/// The simulation: args as the module comment says, `perSample` per slot. Feed-forward graphs run
/// population by population (EventLayered) unless `layered` is false (the general loop, which the
/// tests compare it with).
type EventForward(l: Layout, perSample: bool[], layered: bool) =
    inherit KernelFn("Events.run")
    // Forced spikes take the general loop (the population-by-population path solves every crossing).
    let order =
        if layered && l.NForced = 0 then
            EventLayered.tryOrder l
        else
            None

    new(l, perSample) = EventForward(l, perSample, true)

    member _.Layout = l
    member _.PerSample = perSample

    override _.Kernel args =
        let batch = batchOf args
        let sd = slotData l perSample args
        let inp = inputs l args
        let c = l.Capacity
        let spk, ro = l.Spiking, l.Readouts

        // Uninitialised: both simulators write every element of every sample (the spikes, then +inf
        // and -1 up to Capacity; the counts; the maxima), and the buffers are megabytes per call.
        let out =
            {
                Times = spk |> Array.map (fun _ -> GC.AllocateUninitializedArray<float>(batch * c))
                Neurons = spk |> Array.map (fun _ -> GC.AllocateUninitializedArray<int>(batch * c))
                Count = spk |> Array.map (fun _ -> GC.AllocateUninitializedArray<int> batch)
                Overflow = spk |> Array.map (fun _ -> GC.AllocateUninitializedArray<int> batch)
                VMax = ro |> Array.map (fun p -> GC.AllocateUninitializedArray<float>(batch * p.N))
                TMax = ro |> Array.map (fun p -> GC.AllocateUninitializedArray<float>(batch * p.N))
            }

        // Parameters shared by all samples are checked once.
        let shared =
            l.Pops
            |> Array.forall (fun p -> Array.forall (fun q -> not perSample[p.Slot + q]) [| 0 .. (if p.Spiking then 4 else 2) |])
            && l.Projs |> Array.forall (fun j -> j.DKind = 0 || not perSample[j.DSlot])

        if shared && batch > 0 then
            checkParams l sd 0

        match order with
        | Some order ->
            forSamplesForward batch (fun () -> EventLayered.LayeredSimulator(l, order), ref ValueNone) (fun (fast, general) b ->
                if not shared then
                    checkParams l sd b

                if not (fast.Run(sd, b, inp, out)) then
                    if general.Value.IsNone then
                        general.Value <- ValueSome(Simulator(l))

                    general.Value.Value.Run(sd, b, inp, ValueSome out))
        | None -> simulate l sd inp batch (ValueSome out) ignore (fun _ _ _ -> ()) ignore

        let dtype = dtypeOf args

        [|
            for r in 0 .. spk.Length - 1 do
                toTensor dtype [| batch; c |] out.Times[r]
                Tensor.FromStorage([| batch; c |], Storage.I32 out.Neurons[r])
                Tensor.FromStorage([| batch |], Storage.I32 out.Count[r])
                Tensor.FromStorage([| batch |], Storage.I32 out.Overflow[r])
            for r in 0 .. ro.Length - 1 do
                toTensor dtype [| batch; ro[r].N |] out.VMax[r]
                toTensor dtype [| batch; ro[r].N |] out.TMax[r]
        |]

    override this.Twin _ =
        invalidOp
            $"%s{this.Name}: the event kernel cannot run on traced arguments (a transform without a rule for it reached it); grad, jvp, vjp, vmap and their nestings of first order are supported"

    override this.Jvp(primals, tangents) =
        let outs = Tensor.ApplyCustom(this, primals)

        let present =
            Array.init l.NSlots (fun k -> isFloatSlot l k && not (isNull tangents[k]))

        let outTangents: Tensor[] = Array.zeroCreate outs.Length

        if Array.exists id present then
            let given =
                [|
                    for k in 0 .. l.NSlots - 1 do
                        if present[k] then
                            tangents[k]
                |]

            let d =
                Tensor.ApplyCustom(EventTangent(l, perSample, present, Array.copy perSample), Array.append primals given)

            for r in 0 .. l.Spiking.Length - 1 do
                outTangents[4 * r] <- d[r]

            for r in 0 .. l.Readouts.Length - 1 do
                outTangents[4 * l.Spiking.Length + 2 * r] <- d[l.Spiking.Length + r]

        outs, outTangents

    override this.Batch(args, batched, size) =
        let batch =
            if batched[0] then
                args[0].ShapeRef[1]
            else
                args[0].ShapeRef[0]

        let ps = Array.copy perSample

        let folded =
            args
            |> Array.mapi (fun k a ->
                if isEventSlot l k then
                    foldSample size batched[k] a
                else
                    let x, p = foldParam size batch perSample[k] batched[k] a
                    ps[k] <- p
                    x)

        Some(
            Tensor.ApplyCustom(EventForward(l, ps, layered), folded)
            |> Array.map (unfold size)
        )

/// The tangent of the simulation's differentiable outputs (spike times per spiking population,
/// maxima per readout) along the trajectory of the constant arguments (the forward's args),
/// linear in the tangents of the `present` slots (given after the constants, per sample where
/// `linPerSample`).
and EventTangent(l: Layout, perSample: bool[], present: bool[], linPerSample: bool[]) =
    inherit KernelFn("Events.run (tangent)")

    member private _.Split(args: Tensor[]) =
        let consts = args[.. l.NSlots - 1]
        let mutable next = l.NSlots

        let lin =
            Array.init l.NSlots (fun k ->
                if present[k] then
                    next <- next + 1
                    args[next - 1]
                else
                    null)

        consts, lin

    override this.Kernel args =
        let consts, lin = this.Split args
        let batch = batchOf consts
        let sd = slotData l perSample consts
        let tan = slotData l linPerSample lin
        let inp = inputs l consts

        let outT =
            l.Spiking |> Array.map (fun _ -> Array.zeroCreate<float> (batch * l.Capacity))

        let outV = l.Readouts |> Array.map (fun p -> Array.zeroCreate<float> (batch * p.N))

        simulate
            l
            sd
            inp
            batch
            ValueNone
            (fun () -> EventGrad.Replayer l)
            (fun sim rep b -> rep.Forward(sd, b, inp, sim.Log, ValueSome tan, false, outT, outV))
            ignore

        let dtype = dtypeOf consts

        Array.append
            (outT |> Array.map (toTensor dtype [| batch; l.Capacity |]))
            (Array.map2 (fun (p: PopLayout) a -> toTensor dtype [| batch; p.N |] a) l.Readouts outV)

    override this.Twin _ =
        invalidOp $"%s{this.Name}: the event kernel cannot run on traced arguments"

    override _.IsLinear = true
    override _.IsConstantArg k = k < l.NSlots

    override _.OutputTypes args =
        let batch = batchOf args
        let dtype = dtypeOf args

        Array.append
            (l.Spiking |> Array.map (fun _ -> [| batch; l.Capacity |], dtype))
            (l.Readouts |> Array.map (fun p -> [| batch; p.N |], dtype))

    override this.Jvp(primals, tangents) =
        if tangents[.. l.NSlots - 1] |> Array.exists (fun t -> not (isNull t)) then
            invalidOp
                "Events.run: second-order derivatives (hessian, hvp, jvp of grad) are not supported by the event kernels; first-order transforms and their vmaps are"

        let outs = Tensor.ApplyCustom(this, primals)
        let consts, _ = this.Split primals
        let _, dlin = this.Split tangents
        let present' = Array.init l.NSlots (fun k -> present[k] && not (isNull dlin[k]))

        if Array.exists id present' then
            let given =
                [|
                    for k in 0 .. l.NSlots - 1 do
                        if present'[k] then
                            dlin[k]
                |]

            outs, Tensor.ApplyCustom(EventTangent(l, perSample, present', linPerSample), Array.append consts given)
        else
            outs, Array.zeroCreate outs.Length

    override _.Transpose(consts, cts) =
        let wanted = Array.zeroCreate<bool> l.NSlots
        let mutable next = l.NSlots

        for k in 0 .. l.NSlots - 1 do
            if present[k] then
                wanted[k] <- isNull consts[next]
                next <- next + 1

        let ctsPresent = cts |> Array.map (fun c -> not (isNull c))
        let result: Tensor[] = Array.zeroCreate consts.Length

        if Array.exists id wanted && Array.exists id ctsPresent then
            let given = cts |> Array.filter (fun c -> not (isNull c))

            let g =
                Tensor.ApplyCustom(
                    EventTangentT(l, perSample, ctsPresent, wanted, linPerSample),
                    Array.append consts[.. l.NSlots - 1] given
                )

            let mutable slot = l.NSlots
            let mutable o = 0

            for k in 0 .. l.NSlots - 1 do
                if present[k] then
                    if wanted[k] then
                        result[slot] <- g[o]
                        o <- o + 1

                    slot <- slot + 1

        result

    override this.Batch(args, batched, size) =
        let batch =
            if batched[0] then
                args[0].ShapeRef[1]
            else
                args[0].ShapeRef[0]

        let ps = Array.copy perSample
        let lps = Array.copy linPerSample

        let consts =
            Array.init l.NSlots (fun k ->
                if isEventSlot l k then
                    foldSample size batched[k] args[k]
                else
                    let x, p = foldParam size batch perSample[k] batched[k] args[k]
                    ps[k] <- p
                    x)

        let mutable next = l.NSlots

        let lin =
            [|
                for k in 0 .. l.NSlots - 1 do
                    if present[k] then
                        let a, bt = args[next], batched[next]
                        next <- next + 1

                        if k < l.NSources then
                            foldSample size bt a
                        else
                            let x, p = foldParam size batch linPerSample[k] bt a
                            lps[k] <- p
                            x
            |]

        Some(
            Tensor.ApplyCustom(EventTangent(l, ps, present, lps), Array.append consts lin)
            |> Array.map (unfold size)
        )

/// The transposed tangent: from the present output cotangents (spike times per spiking
/// population, then maxima per readout) the cotangents of the wanted slots (per sample where
/// `outPerSample`), by EventProp or the Solver adjoint as the layout's gradient says.
and EventTangentT(l: Layout, perSample: bool[], ctsPresent: bool[], wanted: bool[], outPerSample: bool[]) =
    inherit KernelFn("Events.run (transposed tangent)")

    member private _.Cts(args: Tensor[]) =
        let mutable next = l.NSlots

        Array.init ctsPresent.Length (fun k ->
            if ctsPresent[k] then
                next <- next + 1
                args[next - 1]
            else
                null)

    member private _.OutShape(consts: Tensor[], k: int) =
        let batch = batchOf consts
        let s = consts[k].Shape

        if outPerSample[k] && not perSample[k] then
            Array.append [| batch |] s
        else
            s

    override this.Kernel args =
        let consts = args[.. l.NSlots - 1]
        let cts = this.Cts args
        let batch = batchOf consts
        let sd = slotData l perSample consts
        let inp = inputs l consts
        let nSpk = l.Spiking.Length
        let ctT = Array.init nSpk (fun r -> if isNull cts[r] then null else f64 cts[r])

        let ctV =
            Array.init l.Readouts.Length (fun r -> if isNull cts[nSpk + r] then null else f64 cts[nSpk + r])

        let eventProp = l.UseEventProp
        // Per-sample outputs are written in place; shared ones are summed over per-thread copies.
        let full =
            Array.init l.NSlots (fun k ->
                if wanted[k] && outPerSample[k] then
                    Array.zeroCreate<float> (batch * l.SlotSize[k])
                else
                    null)

        let total =
            Array.init l.NSlots (fun k ->
                if wanted[k] && not outPerSample[k] then
                    Array.zeroCreate<float> l.SlotSize[k]
                else
                    null)

        simulate
            l
            sd
            inp
            batch
            ValueNone
            (fun () ->
                EventGrad.Replayer l,
                Array.init l.NSlots (fun k ->
                    if isNull total[k] then
                        full[k]
                    else
                        Array.zeroCreate<float> l.SlotSize[k]),
                Array.zeroCreate<int> l.NSlots)
            (fun sim (rep, grad, off) b ->
                for k in 0 .. l.NSlots - 1 do
                    off[k] <- if isNull full[k] then 0 else b * l.SlotSize[k]

                rep.Forward(sd, b, inp, sim.Log, ValueNone, true, null, null)
                rep.Backward(sim.Log, eventProp, ctT, ctV, grad, off))
            (fun (_, grad, _) ->
                for k in 0 .. l.NSlots - 1 do
                    if not (isNull total[k]) then
                        let t, g = total[k], grad[k]

                        for q in 0 .. t.Length - 1 do
                            t[q] <- t[q] + g[q])

        [|
            for k in 0 .. l.NSlots - 1 do
                if wanted[k] then
                    let a = if isNull full[k] then total[k] else full[k]
                    toTensor consts[k].DType (this.OutShape(consts, k)) a
        |]

    override this.Twin _ =
        invalidOp $"%s{this.Name}: the event kernel cannot run on traced arguments"

    override _.IsLinear = true
    override _.IsConstantArg k = k < l.NSlots

    override this.OutputTypes args =
        [|
            for k in 0 .. l.NSlots - 1 do
                if wanted[k] then
                    this.OutShape(args, k), args[k].DType
        |]

    override this.Jvp(primals, tangents) =
        if tangents[.. l.NSlots - 1] |> Array.exists (fun t -> not (isNull t)) then
            invalidOp
                "Events.run: second-order derivatives (hessian, hvp, jvp of grad) are not supported by the event kernels; first-order transforms and their vmaps are"

        let outs = Tensor.ApplyCustom(this, primals)
        let dcts = this.Cts tangents

        let present' =
            Array.init ctsPresent.Length (fun k -> ctsPresent[k] && not (isNull dcts[k]))

        if Array.exists id present' then
            let given = dcts |> Array.filter (fun c -> not (isNull c))
            let k' = EventTangentT(l, perSample, present', wanted, outPerSample)
            outs, Tensor.ApplyCustom(k', Array.append primals[.. l.NSlots - 1] given)
        else
            outs, Array.zeroCreate outs.Length

    override this.Transpose(consts, cts) =
        // The transpose of the transpose: the tangent, from the cotangents of the wanted slots.
        let mutable o = 0
        let lin: Tensor[] = Array.zeroCreate l.NSlots

        for k in 0 .. l.NSlots - 1 do
            if wanted[k] then
                lin[k] <- cts[o]
                o <- o + 1

        let present = Array.init l.NSlots (fun k -> not (isNull lin[k]))
        let result: Tensor[] = Array.zeroCreate consts.Length

        if Array.exists id present then
            let given = lin |> Array.filter (fun t -> not (isNull t))

            let d =
                Tensor.ApplyCustom(EventTangent(l, perSample, present, outPerSample), Array.append consts[.. l.NSlots - 1] given)

            let mutable slot = l.NSlots

            for r in 0 .. ctsPresent.Length - 1 do
                if ctsPresent[r] then
                    if isNull consts[slot] then
                        result[slot] <- d[r]

                    slot <- slot + 1

        result

    override this.Batch(args, batched, size) =
        let batch =
            if batched[0] then
                args[0].ShapeRef[1]
            else
                args[0].ShapeRef[0]

        let ps = Array.copy perSample

        let consts =
            Array.init l.NSlots (fun k ->
                if isEventSlot l k then
                    foldSample size batched[k] args[k]
                else
                    let x, p = foldParam size batch perSample[k] batched[k] args[k]
                    ps[k] <- p
                    x)

        let cts =
            args[l.NSlots ..]
            |> Array.mapi (fun q a -> foldSample size batched[l.NSlots + q] a)

        let ops = Array.init l.NSlots (fun k -> wanted[k] && isFloatSlot l k)
        let k' = EventTangentT(l, ps, ctsPresent, wanted, ops)
        let g = Tensor.ApplyCustom(k', Array.append consts cts)
        let mutable o = 0

        Some
            [|
                for k in 0 .. l.NSlots - 1 do
                    if wanted[k] then
                        let x = unfold size g[o] // [S; B; P...]
                        o <- o + 1
                        if outPerSample[k] then x else x.Sum(1)
            |]
