"""The training loop: n_critic critic steps per generator step, for every loss plugin."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

from gantools import checkpoint as ckpt
from gantools import (augment, conditional, cudagraphs, diagnostics, distributed, metrics, precision, report,
                      stepcontext, tblog)
from gantools.config import split_dataset, steps_for_epochs
from gantools.data import BatchStream
from gantools.errors import UserError
from gantools.models import build_models, ema_decay, sample_prior, update_ema
from gantools.registry import Registry
from gantools.run import Run
from gantools.rundir import RunDirectory, versions
from gantools.specs import JointContext

N_FIXED = 64  # latents in the fixed sample grid (8 x 8)
PER_CLASS = 8  # a conditional run's fixed grid: a row of 8 per class
N_FIXED_POINTS = 2000
# Under fp16 a non-finite loss is an overflow the GradScaler handles (it skips the update and halves
# its scale) until the scale falls below this; then the run has diverged.
MIN_LOSS_SCALE = 1.0


class TrainingDiverged(UserError):
    """A loss became NaN or infinite."""


def make_optimizer(params, config: dict[str, Any], device: torch.device | None = None) -> torch.optim.Optimizer:
    """The run's optimiser; with ``device`` (CUDA graphs) capturable, its learning rate a tensor there."""
    lr: float | torch.Tensor = config["lr"]
    extra: dict[str, Any] = {}
    if device is not None:
        lr, extra = torch.tensor(float(lr), device=device), {"capturable": True}
    if config["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **extra)
    return torch.optim.Adam(params, lr=lr, betas=tuple(config["betas"]), **extra)


class Trainer:
    """Owns the models, optimisers, data stream and run directory of one training run.

    Data parallelism (``parallel`` from gantools.distributed.session under torchrun): each rank
    computes its B/W rows of the global batch with globally drawn randomness (see
    gantools.distributed), and gradients are averaged before every update. The critic's are
    averaged by an explicit all-reduce after backward, because its gradient penalty is a double
    backward that DistributedDataParallel's reducer does not support. The generator is wrapped in
    DDP, which overlaps the all-reduce with the backward and keeps BatchNorm buffers in step
    (rank 0's are broadcast at each forward); with a joint inverter the generator side uses the
    explicit all-reduce too, since the inverter's networks are outside the generator and some
    (vaegan) run the generator twice per backward, which DDP's reducer refuses. Rank 0 alone
    writes the run directory.

    Args:
        registry: plugin registry.
        config: the resolved config (see gantools.config.resolve).
        sources: where each config value came from.
        out: run directory.
        progress: show a progress bar on stderr.
        parallel: this process's place in a data-parallel run (default: a single process).
    """

    def __init__(self, registry: Registry, config: dict[str, Any], sources: dict[str, str],
                 out: str | Path, progress: bool = True, parallel: distributed.DataParallel = distributed.SINGLE):
        self.config, self.sources = config, sources
        self.registry = registry
        self.out = Path(out)
        self.rundir = RunDirectory(out, writes=parallel.is_main)
        self.dp = parallel
        self.progress = progress and parallel.is_main
        self.device = parallel.training_device(config["device"])
        self.local_batch = parallel.local_batch(config["batch_size"])
        precision.check(config["precision"], self.device)
        if self.device.type == "cuda":  # shapes are static: let cuDNN time its algorithms once
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(config["seed"])
        self._build_data(registry)
        self.augment = self._augmentations()
        self.models = build_models(registry, config, self.data_shape, self.device, len(self.classes or ()))
        self.memory_format = self.models.memory_format
        if self.models.conditioning:  # auto -> the loss's choice, recorded as such
            config["conditional"] = self.models.conditioning
        for name in config["eval_metrics"]:  # fail now, not at the first evaluation
            registry.info("metrics", name)
        reason = cudagraphs.refusal(config, self.device, self.dp.world, self.models.loss) if config["cuda_graphs"] else None
        if reason is not None:
            raise UserError(f"--cuda-graphs cannot capture this run: {reason}")
        self._build_optimisers(registry)
        self.next_real = None  # set by CUDA graphs: returns the static real batches
        self._ema_decay: float | torch.Tensor = 0.0
        self._noise_std: float | torch.Tensor = 0.0
        self.graphed = self._cuda_graphs() if config["cuda_graphs"] else None
        fixed_gen = torch.Generator().manual_seed(config["seed"] + 1)
        n_fixed = N_FIXED_POINTS if self.data_kind == "points" else N_FIXED
        self.fixed_labels = None  # a conditional run's grid: one row of PER_CLASS samples per class
        if self.classes:
            self.fixed_labels = conditional.class_rows(len(self.classes), PER_CLASS)
            n_fixed = len(self.fixed_labels)
        self.fixed_z = sample_prior(n_fixed, config["z_dim"], config["prior"], torch.device("cpu"), fixed_gen)
        self.step = 0
        self._checked = 0  # the last step at which the losses were checked and found finite
        self._stop_requested = False
        self._log_sums: dict[str, tuple[torch.Tensor, int]] = {}  # key -> (sum, count) since the last row
        self._log_count = 0

    def _build_data(self, registry: Registry) -> None:
        config = self.config
        self.dataset_name, arg = split_dataset(config["dataset"])
        dataset = registry.create("datasets", self.dataset_name, config["dataset_opts"])
        self.data_kind = getattr(dataset, "kind", "images")
        data = dataset.build(arg, config["image_size"], config["channels"])
        self.data_shape = tuple(data[0].shape) if len(data) else ()
        if config["epochs"] is not None:
            config["steps"] = steps_for_epochs(config, len(data))
            self.sources["steps"] = f"epochs:{config['epochs']}"
        labels, self.classes = None, None
        if config["conditional"] != "off":
            labelled = conditional.labels_of(data)
            if labelled is None:
                raise UserError(f"--conditional needs labelled data; {config['dataset']} has no labels (digits, "
                                f"mnist, a folder with class sub-folders or a prepared dataset.json have them)")
            labels, self.classes = labelled
            if config["inverter"]:
                raise UserError(f"joint inverters ({config['inverter']}) need an unconditional run; drop --conditional")
        self.stream = BatchStream(data, config["batch_size"], config["seed"], rank=self.dp.rank, world=self.dp.world,
                                  labels=labels)

    def _augmentations(self) -> tuple[str, ...]:
        policy = augment.parse(",".join(self.config["augment"]))
        loss = self.config["loss"]
        if (policy or self.config["instance_noise"]) and getattr(self.registry.load("losses", loss), "autoencoder", False):
            raise UserError(f"--augment and --instance-noise change what a critic sees; --loss {loss} trains an "
                            f"autoencoder, which has none")
        if policy and self.data_kind != "images":
            raise UserError(f"--augment {','.join(policy)} applies to images; {self.dataset_name} holds points")
        if "diffaugment" in policy and self.config["inverter"]:
            raise UserError(f"--augment diffaugment changes the critic's inputs, which joint inverters "
                            f"({self.config['inverter']}) pair with latents themselves; train them without it")
        return policy

    def _cuda_graphs(self) -> cudagraphs.GraphedIteration:
        self._ema_decay = torch.zeros((), device=self.device)  # read by the captured EMA update
        self._noise_std = torch.zeros((), device=self.device)  # and by the captured instance noise
        return cudagraphs.GraphedIteration(self)

    def _build_optimisers(self, registry: Registry) -> None:
        """The joint inverter (if any), the optimisers, GradScalers and the data-parallel wrapping."""
        config = self.config
        self.joint = self._attach_inverter(registry) if config["inverter"] else None
        self._joint_ctx = self.joint_context() if self.joint is not None else None
        # The network the loss plugin's critic objective sees: the critic, or a joint inverter's
        # discriminator (ALI's on (x, z) pairs).
        joint_discriminator = getattr(self.joint, "discriminator", None)
        self.adversary = self.models.critic if joint_discriminator is None else joint_discriminator
        generator_side = list(self.models.generator.parameters())
        if self.joint is not None:  # the inverter's own networks train with the generator
            generator_side += list(self.joint.parameters())
        if self.models.encoder is not None:  # an autoencoder's encoder trains with its decoder
            generator_side += list(self.models.encoder.parameters())
        graphs = self.device if config["cuda_graphs"] else None
        self.opt_g = make_optimizer(generator_side, config, graphs)
        self.opt_d = None if self.adversary is None else make_optimizer(self.adversary.parameters(), config, graphs)
        self.scaler_d = precision.grad_scaler(config["precision"], self.device)
        self.scaler_g = precision.grad_scaler(config["precision"], self.device)
        self._skipped = 0  # updates the fp16 GradScalers skipped in the current iteration
        self.generator_forward, self._generator_sync = self._data_parallel(generator_side)

    def _data_parallel(self, generator_side: list) -> tuple[torch.nn.Module, list]:
        """(the module the generator step calls, the generator-side parameters it all-reduces itself):
        DDP and nothing for a plain generator, the generator and all of them with a joint inverter."""
        if self.dp.world == 1:
            return self.models.generator, []
        nets = [n for n in (self.models.critic, self.models.generator, self.adversary, self.models.encoder) if n is not None]
        state = {id(t): t for t in [*generator_side, *(t for n in nets for t in (*n.parameters(), *n.buffers()))]}
        self.dp.broadcast(list(state.values()))  # the same seed gave the same weights; made certain
        if self.joint is not None or self.models.encoder is not None:  # networks outside the generator
            return self.models.generator, generator_side
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.models.generator, device_ids=ids), []

    def _attach_inverter(self, registry: Registry):
        name = self.config["inverter"]
        if self.models.encoder is not None:
            raise UserError(f"--loss {self.config['loss']} trains its own encoder (the autoencoder inverter uses it); "
                            f"drop --inverter {name}")
        inverter = registry.create("inverters", name, self.config["inverter_opts"])
        if not getattr(inverter, "joint", False):
            raise UserError(f"inverter '{name}' is fitted after training (gantools invert fit RUN --inverter "
                            f"{name}); --inverter at training time takes a joint one (ali, vaegan)")
        if self.data_kind != "images":
            raise UserError(f"inverter '{name}' needs image data; {self.dataset_name} holds points")
        inverter.attach(self.joint_context())
        return inverter

    def joint_context(self) -> JointContext:
        """What a joint inverter may use of this run (gantools.specs.JointContext)."""
        m = self.models
        return JointContext(arch=m.arch, loss=m.loss, generator=m.generator, critic=m.critic, config=self.config,
                            data_shape=self.data_shape, z_dim=self.config["z_dim"], prior=self.config["prior"],
                            device=self.device, memory_format=self.memory_format, real_batch=self.real_batch)

    def host_batch(self) -> torch.Tensor:
        """This rank's rows of the next real batch on the host (pinned for a CUDA device, so the copy
        to it does not wait for the device); (rows, labels) in a conditional run."""
        batch = self.stream.next()
        if self.device.type != "cuda":
            return batch
        return tuple(t.pin_memory() for t in batch) if isinstance(batch, tuple) else batch.pin_memory()

    def real_batch(self) -> torch.Tensor:
        """This rank's rows of the next real batch on the training device, in the training layout
        (x-flipped at random under --augment flip)."""
        return self.labelled_batch()[0]

    def labelled_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real_batch(), its labels on the device), the labels None in an unconditional run."""
        labels = None
        if self.next_real is not None:
            real = self.next_real()
        else:
            real = self.host_batch()
            if isinstance(real, tuple):
                real, labels = real[0], real[1].to(self.device, non_blocking=True)
            real = real.to(self.device, non_blocking=True, memory_format=self.memory_format)
        return (augment.flip(real) if "flip" in self.augment else real), labels

    # ---- one iteration ---------------------------------------------------------------------
    def prior(self, n: int) -> torch.Tensor:
        """n latents; in a data-parallel step, this rank's rows of the global batch's latents."""
        return stepcontext.rows(
            lambda rows: sample_prior(rows, self.config["z_dim"], self.config["prior"], self.device), n)

    def autocast(self):
        return precision.autocast(self.config["precision"], self.device, cache=not self.config["cuda_graphs"])

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler, sync: list) -> None:
        """Backward (scaled under fp16), average the gradients of ``sync`` over ranks, step."""
        opt.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
        self.dp.all_reduce_gradients(sync)
        if scaler is None:
            opt.step()
            return
        scale = scaler.get_scale()
        scaler.step(opt)  # unscales; skips the step when a gradient is inf/nan
        scaler.update()
        self._skipped += scaler.get_scale() < scale

    def critic_step(self) -> tuple[torch.Tensor, dict]:
        """Critic update: minimise the loss plugin's critic objective on a real and a fake batch
        (e.g. WGAN-GP: E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)|| - 1)^2])."""
        m = self.models
        real, y = self.labelled_batch()
        z = self.prior(real.shape[0])
        with self.autocast():
            with torch.no_grad():
                fake = m.generator(z) if y is None else m.generator(z, y)  # conditional: the real batch's classes
            # DiffAugment: the same kind of random transform on real and generated images.
            real, fake = self.critic_view(real), self.critic_view(fake)
            if self.joint is not None:  # e.g. ALI: (x, E(x)) against (G(z), z)
                real, fake = self.joint.critic_inputs(real, z, fake)
            with precision.loss_scale(self.scaler_d):  # fp16: penalties unscale their input gradient
                loss, logs = m.loss.discriminator_loss(self._critic_for(y), real, fake)
            if m.conditioning == "acgan":
                loss = loss + self._classifier_loss(logs, "acgan_d", (real, y), (fake, y))
        self._update(loss, self.opt_d, self.scaler_d, list(self.adversary.parameters()))
        if self.config["log_grad_norms"]:  # after the update: its all-reduced, unscaled gradients
            logs = {**logs, **diagnostics.grad_norms(self.adversary)}
        after = getattr(m.loss, "after_discriminator_step", None)
        if after is not None:
            after(self.adversary)
        return loss.detach(), logs

    def generator_step(self) -> tuple[torch.Tensor, dict]:
        """Generator update: minimise the loss plugin's generator objective
        (e.g. WGAN: -E[D(G(z))]); the critic's weights are frozen meanwhile."""
        m = self.models
        self.adversary.requires_grad_(False)
        try:
            z = self.prior(self.local_batch)
            y = self.class_labels(self.local_batch) if m.conditioning else None
            with self.autocast():
                fake = self.generator_forward(z) if y is None else self.generator_forward(z, y)
                if self.joint is not None:  # the inverter's objective for G and its own networks
                    loss, logs = self.joint.generator_loss(self._joint_ctx, z, fake)
                else:
                    view = self.critic_view(fake)
                    loss, logs = m.loss.generator_loss(self._critic_for(y), view)
                    if m.conditioning == "acgan":
                        loss = loss + self._classifier_loss(logs, "acgan_g", (view, y))
            self._update(loss, self.opt_g, self.scaler_g, self._generator_sync)
        finally:
            self.adversary.requires_grad_(True)
        if m.generator_ema is not None:
            update_ema(m.generator_ema, m.generator, self._ema_decay)
        return loss.detach(), logs

    def autoencoder_step(self) -> tuple[torch.Tensor, dict]:
        """An autoencoder's update (--loss ae|dae|vae): the loss plugin's reconstruction objective
        on a real batch, minimised over the encoder and the generator (the decoder) together."""
        m = self.models
        real = self.real_batch()
        with self.autocast():
            loss, logs = m.loss.reconstruction_loss(m.encoder, self.generator_forward, real)
        self._update(loss, self.opt_g, self.scaler_g, self._generator_sync)
        if m.generator_ema is not None:
            update_ema(m.generator_ema, m.generator, self._ema_decay)
        return loss.detach(), logs

    def class_labels(self, n: int) -> torch.Tensor:
        """n class labels drawn uniformly (this rank's rows of the global batch's): what a
        conditional generator is asked for in its own step."""
        k = len(self.classes)
        return stepcontext.rows(lambda rows: torch.randint(k, (rows,), device=self.device), n)

    def _critic_for(self, y: torch.Tensor | None) -> torch.nn.Module:
        """The critic as the loss plugin calls it: with the batch's labels bound in a conditional run."""
        return self.adversary if y is None else conditional.LabelledCritic(self.adversary, y)

    def _classifier_loss(self, logs: dict, name: str, *batches: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """AC-GAN: acgan_weight x the summed cross-entropy of the critic's class head on each
        (images, labels) batch; logged as ``name``."""
        ce = sum(torch.nn.functional.cross_entropy(self.adversary.classify(x), y.long()) for x, y in batches)
        logs[name] = ce.detach()
        return self.config["acgan_weight"] * ce

    def critic_view(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the critic sees it: DiffAugment (--augment diffaugment), then instance noise
        (--instance-noise s: Gaussian noise of std s annealed linearly to 0 over the run, drawn for
        the global batch like every per-sample draw)."""
        x = augment.augment_fake(x, self.augment)
        if not self.config["instance_noise"]:
            return x
        noise = stepcontext.rows(lambda n: torch.randn((n, *x.shape[1:]), device=x.device, dtype=x.dtype), x.shape[0])
        return x + noise * self._noise_std

    def set_schedules(self) -> None:
        """This iteration's learning rate and weight-average decay, functions of the step alone (so
        a resumed run follows the same schedule). Linear decay: the full rate until lr_decay_start
        of the run, then a straight line to 0 at the last step. Under CUDA graphs both are tensors
        the captured step reads, filled here."""
        if self.config["lr_decay"] == "linear":
            start = self.config["lr_decay_start"]
            remaining = 1.0 - self.step / self.config["steps"]
            lr = self.config["lr"] * min(1.0, remaining / (1.0 - start))
            for group in (*(self.opt_d.param_groups if self.opt_d else ()), *self.opt_g.param_groups):
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr
        decay = ema_decay(self.config["ema"], self.step)
        std = self.config["instance_noise"] * max(0.0, 1.0 - self.step / self.config["steps"])
        if isinstance(self._ema_decay, torch.Tensor):
            self._ema_decay.fill_(decay)
            self._noise_std.fill_(std)
        else:
            self._ema_decay, self._noise_std = decay, std

    def schedule_record(self) -> dict[str, float]:
        """The scheduled values of this step for a log row: the learning rate, and the instance
        noise's std when it is on (read at log steps only: under CUDA graphs they are tensors)."""
        record = {"lr": float(self.opt_g.param_groups[0]["lr"])}
        if self.config["instance_noise"]:
            record["instance_noise_std"] = float(self._noise_std)
        return record

    def train_step(self) -> dict[str, torch.Tensor]:
        """One iteration: n_critic critic updates, then one generator update. The critic's losses
        and logs are the means over its n_critic updates. Nothing here waits for the device: the
        logs stay device tensors, and divergence is judged on their sums (check_finite) at log
        steps and before anything is saved; under fp16 the GradScaler reads its overflow flag
        every step anyway, so a non-finite loss is judged there at once."""
        if self.graphed is not None:
            return self.graphed()
        self.set_schedules()
        logs = self.iteration()
        if self.scaler_d is not None:
            return self._fp16_logs(logs)
        return logs

    def iteration(self) -> dict[str, torch.Tensor]:
        """The work of one iteration, what CUDA graphs capture: no host reads, no schedule changes."""
        self._skipped = 0
        if self.models.encoder is not None:  # an autoencoder: no critic, its objective is logged as g_loss
            with self.dp.sharding():
                loss, logs = self.autoencoder_step()
            logs = _mean_logs([logs], loss.device)
            logs["g_loss"] = loss.to(torch.float64)
            return logs
        critic: list[tuple[torch.Tensor, dict]] = []
        with self.dp.sharding():
            for _ in range(self.config["n_critic"]):
                critic.append(self.critic_step())
            g_loss, g_logs = self.generator_step()
        logs = _mean_logs([{**d_logs, "d_loss": loss} for loss, d_logs in critic], g_loss.device)
        logs.update(g_logs)
        logs["g_loss"] = g_loss.detach().to(torch.float64)
        return logs

    def _fp16_logs(self, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Under fp16 a non-finite loss is first an overflow the GradScaler skipped (its scale then
        halves); it is divergence once the scale has fallen below MIN_LOSS_SCALE."""
        logs["amp_skipped"] = torch.tensor(float(self._skipped))
        finite = all(bool(torch.isfinite(logs[k])) for k in ("d_loss", "g_loss") if k in logs)
        if not finite and self._skipped and min(self.scaler_d.get_scale(), self.scaler_g.get_scale()) >= MIN_LOSS_SCALE:
            return {"amp_skipped": logs["amp_skipped"]}
        return logs

    def check_finite(self) -> None:
        """Stop the run if a loss summed since the last log row is NaN or infinite (one wait for
        the device; every rank judges the same global sums). Called at log steps and before every
        checkpoint, sample grid and evaluation, so nothing non-finite is ever saved."""
        keys = [k for k in ("d_loss", "g_loss") if k in self._log_sums]
        if not keys:
            return
        totals = torch.stack([self._log_sums[k][0] for k in keys])
        if self.dp.world > 1:
            totals = self.dp.mean(totals)
        if bool(torch.isfinite(totals).all()):
            self._checked = self.step
            return
        name = keys[int((~torch.isfinite(totals)).nonzero()[0])]
        raise TrainingDiverged(self._diverged_message(name, float(totals[keys.index(name)])))

    def _diverged_message(self, name: str, value: float) -> str:
        latest = self.out / "checkpoints" / "latest.pt"
        kept = f"the last good checkpoint is {latest}" if latest.exists() else "no checkpoint was written yet"
        return (f"{name} became {value} between steps {self._checked + 1} and {self.step} (losses are checked "
                f"every --log-every steps and before every checkpoint); training stopped ({kept}). "
                f"Try a lower --lr or a different loss")

    # ---- run directory -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        m = self.models
        return {
            "format": ckpt.FORMAT, "version": ckpt.VERSION,
            "config": self.config, "sources": self.sources, "step": self.step,
            "data": self.data_record(),
            "generator": m.generator.state_dict(), "critic": None if m.critic is None else m.critic.state_dict(),
            "encoder": None if m.encoder is None else m.encoder.state_dict(),
            "generator_ema": None if m.generator_ema is None else m.generator_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "inverter": None if self.joint is None else self.joint.state_dict(),
            "stream": self.stream.state_dict(), "fixed_z": self.fixed_z,
            # Identical on every rank (see gantools.distributed), so rank 0's is the run's.
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "device": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
            "loss": m.loss.state_dict() if hasattr(m.loss, "state_dict") else None,
            "scalers": None if self.scaler_d is None else [self.scaler_d.state_dict(), self.scaler_g.state_dict()],
            "world_size": self.dp.world,  # for the record: any world size resumes it
            "versions": versions(self.registry, self.config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        m = self.models
        m.generator.load_state_dict(state["generator"])
        for net, key in ((m.critic, "critic"), (m.encoder, "encoder")):
            if net is not None:
                net.load_state_dict(state[key])
        if m.generator_ema is not None and state.get("generator_ema") is not None:
            m.generator_ema.load_state_dict(state["generator_ema"])
        if self.joint is not None:
            self.joint.load_state_dict(state["inverter"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(state["opt_d"])
        self.stream.load_state_dict(state["stream"])
        self.fixed_z = state["fixed_z"]
        self.step = int(state["step"])
        if state.get("loss") is not None and hasattr(m.loss, "load_state_dict"):
            m.loss.load_state_dict(state["loss"])
        if state.get("scalers") and self.scaler_d is not None:  # None: trained in fp32/bf16 so far
            self.scaler_d.load_state_dict(state["scalers"][0])
            self.scaler_g.load_state_dict(state["scalers"][1])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"].get("device") is not None:
            torch.cuda.set_rng_state(state["rng"]["device"], self.device)
        elif torch.cuda.is_available() and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def save_checkpoint(self) -> Path:
        """Write checkpoints/latest.pt, plus a numbered copy on every checkpoint_every step (rank 0)."""
        if not self.dp.is_main:
            return self.rundir.latest
        return self.rundir.save_checkpoint(self.state_dict(), self.step,
                                           numbered=self.step % self.config["checkpoint_every"] == 0)

    def sampling_generator(self) -> torch.nn.Module:
        m = self.models
        return m.generator_ema if m.generator_ema is not None else m.generator

    def as_run(self, status: str) -> Run:
        """The run as gantools.train returns it (its sampling generator and critic, live)."""
        return Run(config=self.config, generator=self.sampling_generator(), critic=self.models.critic,
                   data_kind=self.data_kind, data_shape=self.data_shape, directory=self.out, step=self.step,
                   device=self.device, status=status, memory_format=self.memory_format, classes=self.classes,
                   encoder=self.models.encoder)

    def save_samples(self) -> Path:
        """Render the fixed latent batch to samples/step_N.png (and samples/latest.png), on rank 0."""
        if not self.dp.is_main:
            return self.rundir.save_samples(torch.empty(0), self.step, self.data_kind)
        samples = self.as_run("training").generate(self.fixed_z, labels=self.fixed_labels)  # eval mode, restored after
        nrow = PER_CLASS if self.fixed_labels is not None else None
        critic = self.models.critic if self.data_kind == "points" and self.joint is None else None
        return self.rundir.save_samples(samples, self.step, self.data_kind, self.stream.dataset, nrow=nrow,
                                        critic=critic)

    def data_record(self) -> dict[str, Any]:
        """What a checkpoint and config.json say of the data: kind, item shape, and a conditional
        run's class names (their order is the label order)."""
        record: dict[str, Any] = {"kind": self.data_kind, "shape": list(self.data_shape)}
        if self.classes:
            record["classes"] = list(self.classes)
        return record

    def config_record(self) -> dict[str, Any]:
        """What config.json holds: the config, where each value came from, the data, the versions."""
        return {"config": self.config, "sources": self.sources,
                "data": self.data_record(),
                "world_size": self.dp.world, "versions": versions(self.registry, self.config)}

    # ---- the loop ------------------------------------------------------------------------
    def _accumulate(self, logs: dict[str, torch.Tensor]) -> None:
        # Per key, as some logs come and go (a lazy penalty's, fp16 overflows); sums stay on the
        # device, so no step waits for it.
        for key, value in logs.items():
            value = torch.as_tensor(value).detach().to(self.device, torch.float64)
            total, count = self._log_sums.get(key, (0.0, 0))
            self._log_sums[key] = (total + value, count + 1)
        self._log_count += 1

    def _flush_logs(self, seconds: float, bar) -> dict[str, float]:
        """Append the mean of the logs since the last row (over steps, and over ranks) to metrics.jsonl
        (on rank 0; the other ranks take part in the mean only), after checking the losses."""
        self.check_finite()
        n = max(self._log_count, 1)
        keys = list(self._log_sums)  # the same keys in the same order on every rank
        totals = [self._log_sums[k][0] for k in keys]
        if self.dp.world > 1 and keys:
            totals = self.dp.mean(torch.stack(totals)).unbind()
        row = {"step": self.step}
        row.update({k: round(float(total) / self._log_sums[k][1], 6) for k, total in zip(keys, totals)})
        images = n * self.config["batch_size"] * self.config["n_critic"]  # the global batch
        row["images_per_s"] = round(images / max(seconds, 1e-9), 1)
        row.update(self.schedule_record())
        self._log_sums, self._log_count = {}, 0
        self.rundir.log(row)
        if bar is not None:
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("d_loss", "g_loss", "images_per_s") if k in row})
        return row

    def _on_sigint(self, signum, frame) -> None:
        # First Ctrl-C: finish the current iteration, checkpoint and exit; a second one aborts. Under
        # torchrun the launcher forwards the signal too, so a second one is not taken as an abort.
        self._stop_requested = True
        if self.dp.world == 1:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def train(self) -> str:
        """Run until config['steps'] iterations; returns 'finished', 'interrupted' (Ctrl-C) or
        'time limit' (config['time_limit'] minutes passed); each ends with a checkpoint. Rank 0
        alone writes the run directory; the others return once it has."""
        record = self.config_record()
        self.rundir.write_config(record)
        if tblog.wanted(self.config["tensorboard"]):
            self.rundir.open_tensorboard(self.step, record)
        try:
            status = self._train_and_close_logs()
            self.check_finite()  # an interrupted run's last steps too
            self.save_checkpoint()
            if self.joint is not None:
                self.rundir.save_inverter(self.config["inverter"], self.config["inverter_opts"],
                                          self.joint.state_dict())
            self.save_samples()
            self.rundir.plot(self.adversary if self.config["log_grad_norms"] else None)
        finally:
            self.rundir.close_tensorboard()
        self.dp.barrier()
        return status

    def _train_and_close_logs(self) -> str:
        self.rundir.open_metrics(self.step)
        previous = signal.signal(signal.SIGINT, self._on_sigint) if _main_thread() else None
        bar = report.progress_bar(self.step, self.config["steps"]) if self.progress else None
        try:
            return self._loop(bar)
        finally:
            self.rundir.close_metrics()
            if bar is not None:
                bar.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _stop_reason(self, start: float) -> str | None:
        """'interrupted' or 'time limit' when the run must stop now. Several ranks agree on it
        through a collective, which waits for the device, so they ask at log steps only."""
        limit = self.config["time_limit"]
        if self.dp.world > 1 and self.step % self.config["log_every"]:
            return None
        interrupted, out_of_time = self.dp.any(self._stop_requested,
                                               bool(limit) and time.perf_counter() - start >= 60.0 * limit)
        return "interrupted" if interrupted else "time limit" if out_of_time else None

    def _loop(self, bar) -> str:
        cfg = self.config
        self._tick = start = time.perf_counter()
        while self.step < cfg["steps"]:
            reason = self._stop_reason(start)
            if reason is not None:
                if reason == "time limit" and self._log_count:
                    self._flush_logs(time.perf_counter() - self._tick, bar)
                return reason
            self._accumulate(self.train_step())
            self.step += 1
            if bar is not None:
                bar.update(1)
            self._periodic(bar)
        return "finished"

    def _periodic(self, bar) -> None:
        """What is due after this step: a log row, a sample grid, a checkpoint, an evaluation.
        The losses are checked first whenever anything is due (the only wait for the device)."""
        cfg, step = self.config, self.step
        log = step % cfg["log_every"] == 0 or step == cfg["steps"]
        sample, keep = step % cfg["sample_every"] == 0, step % cfg["checkpoint_every"] == 0
        evaluate = bool(cfg["eval_every"]) and (step % cfg["eval_every"] == 0 or step == cfg["steps"])
        if log or sample or keep or evaluate:
            self.check_finite()
        if log:
            now = time.perf_counter()
            self._flush_logs(now - self._tick, bar)
            self._tick = now
        if sample:
            self.save_samples()
        if keep:
            self.save_checkpoint()
        if evaluate and self.dp.is_main:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Score the sampling generator with metric plugins; append {"step", "eval"} to metrics.jsonl.
        The training RNG is left as it was (on rank 0 alone, a draw would set it apart from the others)."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            result = metrics.evaluate(self.as_run("training"), self.config["eval_metrics"] or None,
                                      n=self.config["eval_n"], seed=self.config["seed"], registry=self.registry)
        figures = {name: dict(metrics.scalar_items(values)) for name, values in result["metrics"].items()}
        self.rundir.log({"step": self.step, "eval": figures})
        return figures


def _mean_logs(rows: list[dict], device: torch.device) -> dict[str, torch.Tensor]:
    """Per key, the mean over the rows that have it (a lazy penalty logs on some steps only), on ``device``."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: torch.stack([torch.as_tensor(row[k], device=device).detach().to(torch.float64)
                            for row in rows if k in row]).mean() for k in keys}


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
