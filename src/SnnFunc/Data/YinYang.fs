/// The Yin-Yang data set (Kriener, Göltz and Petrovici 2021): three classes of points in a disk,
/// generated as the reference generator does, deterministically from a key.
namespace SnnFunc.Data

open SnnFunc
open SnnFunc.RandomBits

/// Options of the Yin-Yang generator.
type YinYangOptions =
    {
        /// A constant extra input appended after (x, y, 1-x, 1-y): Some v gives 5 inputs, None 4.
        /// The default, Some 0.0, is jaxsnn's bias spike at t = 0 under the u · t_late latency code.
        Bias: float option
    }

/// Yin-Yang: `classOf` is the reference class rule, `generate` the reference sampling procedure.
///
/// Class 0 is yang, 1 yin, 2 the dots (the numbering of the rule in the reference generator).
/// Points are uniform in [0, 2 r_big]^2 = [0, 1]^2 and those farther than r_big from the centre
/// are rejected. For each example a target class is drawn uniformly from {0, 1, 2}, then points
/// are drawn until one of that class lands inside the disk, so the classes are balanced in
/// expectation (the dots cover only 8 % of the disk). The reference uses NumPy's generator; here
/// every random word comes from SnnFunc's Threefry keys, so the data are identical on every
/// machine but not the same points as the Python reference.
[<RequireQualifiedAccess>]
module YinYang =

    /// Radius of the big circle.
    [<Literal>]
    let rBig = 0.5

    /// Radius of the two dots.
    [<Literal>]
    let rSmall = 0.1

    /// Number of classes.
    [<Literal>]
    let classes = 3

    /// Class names by label.
    let classNames = [| "yang"; "yin"; "dot" |]

    /// Bias input (Some 0.0): 5 inputs.
    let defaults = { Bias = Some 0.0 }

    /// The class of the point (x, y): 0 (yang), 1 (yin), 2 (dots), or -1 when the point lies
    /// farther than r_big from the centre (r_big, r_big).
    let classOf (x: float) (y: float) : int =
        let inline dist (cx: float) (cy: float) =
            sqrt ((x - cx) * (x - cx) + (y - cy) * (y - cy))

        if dist rBig rBig > rBig then
            -1
        else
            let dRight = dist (1.5 * rBig) rBig
            let dLeft = dist (0.5 * rBig) rBig

            if dRight < rSmall || dLeft < rSmall then
                2
            elif
                dRight <= rSmall
                || (dLeft > rSmall && dLeft <= 0.5 * rBig)
                || (y > rBig && dRight > 0.5 * rBig)
            then
                1
            else
                0

    /// One coordinate uniform on [0, 2 r_big) from a word: 24 random bits, so the value, 1 minus it
    /// and the class computed from it are all exact in float32.
    let inline private coordinate (w: uint32) =
        float (w >>> 8) * (2.0 * rBig / 16777216.0)

    /// Example i: its target class from word 0 of the stream of `foldIn key i`, then points from the
    /// following words (x from an even word, y from the next) until one has the target class.
    let private sample (key: Key) (i: int) : struct (float * float * int) =
        let words = WordStream(foldIn key i)
        let goal = words.Below classes
        let mutable x = 0.0
        let mutable y = 0.0
        let mutable found = false

        while not found do
            x <- coordinate (words.Next())
            y <- coordinate (words.Next())
            found <- classOf x y = goal

        struct (x, y, goal)

    /// `count` examples drawn from the key with the given options: inputs `[count; 5]`
    /// (x, y, 1-x, 1-y, bias) or `[count; 4]` without bias, Float32, and labels 0, 1, 2.
    /// Example i depends only on the key and i, so a larger count extends a smaller one.
    let generateWith (options: YinYangOptions) (key: Key) (count: int) : Dataset =
        if count < 0 then
            invalidArg "count" $"YinYang.generate: the count must be non-negative, got %d{count}"

        let width = if options.Bias.IsSome then 5 else 4
        let data = Array.zeroCreate<float32> (count * width)
        let labels = Array.zeroCreate count

        for i in 0 .. count - 1 do
            let struct (x, y, c) = sample key i
            let row = i * width
            data[row] <- float32 x
            data[row + 1] <- float32 y
            data[row + 2] <- float32 (1.0 - x)
            data[row + 3] <- float32 (1.0 - y)

            match options.Bias with
            | Some b -> data[row + 4] <- float32 b
            | None -> ()

            labels[i] <- c

        {
            X = Tensor.FromStorage([| count; width |], Storage.F32 data)
            Labels = labels
        }

    /// `count` examples with the default options (5 inputs, bias 0).
    let generate (key: Key) (count: int) : Dataset = generateWith defaults key count

    /// The standard sizes: train 5000, validation 1000, test 1000.
    let standardSizes = 5000, 1000, 1000

    /// Train, validation and test sets of the given sizes from one seed; each split has its own key
    /// (the three children of `Random.key seed`).
    let splitsOfSize (options: YinYangOptions) (seed: int64) (train: int, validation: int, test: int) =
        let keys = Random.splitN (Random.key seed) 3

        ({
            Train = generateWith options keys[0] train
            Validation = generateWith options keys[1] validation
            Test = generateWith options keys[2] test
        }
        : TrainValidationTest)

    /// The standard splits (5000 / 1000 / 1000) with the given options.
    let splitsWith (options: YinYangOptions) (seed: int64) : TrainValidationTest = splitsOfSize options seed standardSizes

    /// The standard splits (5000 / 1000 / 1000, 5 inputs) from one seed.
    let splits (seed: int64) : TrainValidationTest = splitsWith defaults seed
