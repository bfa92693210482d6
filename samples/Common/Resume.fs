/// The samples' resumption from a checkpoint: training continues exactly where it stopped, and a
/// checkpoint of another network ends the program with one line naming the array at fault. Linked
/// into the samples that take `--checkpoint`.
module internal Resume

open System.IO
open SnnFunc

/// The parameters, optimizer state and completed epochs to start from: those of the checkpoint at
/// `path` when it exists (arrays found by key path, Train.loadCheckpoint), else the given ones and
/// epoch 0. An unreadable checkpoint prints "<program>: cannot resume from <path>: <why>" and exits 1.
let fromCheckpoint (program: string) (path: string option) (parameters: 'P) (state: OptState) : 'P * OptState * int =
    match path with
    | Some p when File.Exists p ->
        let resumed =
            try
                Train.loadCheckpoint p parameters state
            with :? InvalidDataException as e ->
                eprintfn "%s: cannot resume from %s: %s" program p e.Message
                exit 1

        let _, _, epochs = resumed
        printfn "resumed from %s after epoch %d" p epochs
        resumed
    | _ -> parameters, state, 0
