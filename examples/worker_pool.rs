//! A supervised worker pool: a pool actor spreads jobs over four workers; some jobs make a
//! worker fail (an `Err` or a panic), the pool's supervisor strategy restarts it, and the
//! queued jobs are not lost. Run with `cargo run --example worker_pool`.

use std::time::Duration;

use actor_core::{
    Actor, ActorError, ActorRef, ActorResult, ActorSystem, Context, Directive, Props, ReplyTo,
    SupervisorStrategy, Terminated,
};

/// A job: a number to square, or poison that makes the worker fail.
#[derive(Debug)]
enum Job {
    Square(u64, ReplyTo<Result<u64, String>>),
    Poison { panic: bool },
}

struct Worker {
    id: usize,
    done: u64,
}

impl Actor for Worker {
    type Msg = Job;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        println!("  worker {} started at {}", self.id, ctx.path());
        Ok(())
    }

    async fn handle(&mut self, job: Job, _ctx: &mut Context<Self>) -> ActorResult {
        match job {
            Job::Square(n, reply) => {
                self.done += 1;
                reply.reply(Ok(n * n));
                Ok(())
            }
            Job::Poison { panic: true } => panic!("worker {} hit a poisoned job", self.id),
            Job::Poison { panic: false } => Err(ActorError::msg(format!(
                "worker {} rejected a bad job after {} good ones",
                self.id, self.done
            ))),
        }
    }
}

enum PoolMsg {
    Submit(Job),
}

struct Pool {
    size: usize,
    workers: Vec<ActorRef<Job>>,
    next: usize,
}

impl Actor for Pool {
    type Msg = PoolMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for id in 0..self.size {
            let worker = ctx.spawn(
                Props::new(move || Worker { id, done: 0 }),
                &format!("worker-{id}"),
            )?;
            self.workers.push(worker);
        }
        Ok(())
    }

    async fn handle(&mut self, msg: PoolMsg, _ctx: &mut Context<Self>) -> ActorResult {
        let PoolMsg::Submit(job) = msg;
        self.workers[self.next % self.workers.len()].tell(job);
        self.next += 1;
        Ok(())
    }

    async fn terminated(&mut self, t: Terminated, _ctx: &mut Context<Self>) -> ActorResult {
        println!("  pool: {} stopped for good", t.path());
        self.workers.retain(|w| !t.is(w));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The runtime catches a panicking handler and reports it to the supervisor (printed by
    // the decider below); keep the default hook from also printing a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let system = ActorSystem::new("worker-pool")?;
    // Restart failing workers, at most 3 times within 10 s each; then stop them.
    let strategy = SupervisorStrategy::one_for_one()
        .with_max_restarts(3, Duration::from_secs(10))
        .with_decider(|failure| {
            println!("  supervisor: {failure} -> restart");
            Directive::Restart
        });
    let pool = system.spawn(
        Props::new(|| Pool {
            size: 4,
            workers: Vec::new(),
            next: 0,
        })
        .supervisor(strategy),
        "pool",
    )?;

    println!("submitting 20 jobs, every fifth one (2, 7, 12, 17) poisoned");
    let mut ok = 0;
    for n in 0..20u64 {
        if n % 5 == 2 {
            pool.tell(PoolMsg::Submit(Job::Poison { panic: n % 10 == 9 }));
            continue;
        }
        let answer = pool
            .ask(
                |reply| PoolMsg::Submit(Job::Square(n, reply)),
                Duration::from_secs(2),
            )
            .await;
        match answer {
            Ok(Ok(sq)) => {
                ok += 1;
                println!("  {n}^2 = {sq}");
            }
            other => println!("  job {n}: {other:?}"),
        }
    }
    println!("{ok} of 16 jobs answered; the pool survived 4 worker failures");
    system.terminate().await;
    println!("system terminated: children stopped before parents");
    Ok(())
}
