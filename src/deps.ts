import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { openDatabase, type Database } from './db/database.ts';
import { migrateToLatest } from './db/migrator.ts';
import { SecretBox } from './crypto/secret-box.ts';
import { randomToken } from './crypto/tokens.ts';
import { AccountStore } from './account/account.store.ts';
import { AccountService } from './account/account.service.ts';
import { PasswordSignin } from './account/password-signin.ts';
import { SigninLog } from './audit/signin-log.ts';
import { ClientStore } from './client/client.store.ts';
import { LoginThrottle } from './throttle/login-throttle.ts';
import { PasswordHasher } from './password/password-hasher.ts';
import { HashCensus } from './password/hash-census.ts';
import { ConcurrencyLimiter } from './shared/concurrency-limiter.ts';
import { systemClock, type Clock } from './shared/clock.ts';
import { OidcPayloadStore } from './oidc/oidc-payload.store.ts';
import { InteractionStateStore } from './interaction/interaction-state.store.ts';
import { OperatorStore } from './operator/operator.store.ts';
import { HelpDesk } from './operator/help-desk.ts';
import { ImportJobs } from './operator/import-job.ts';
import { MfaStore } from './mfa/mfa.store.ts';
import { MfaService } from './mfa/mfa.service.ts';
import { TokenStore } from './mfa/token.store.ts';
import { TokenService } from './mfa/token.service.ts';
import { AppPasswordStore } from './account/app-password.store.ts';
import { passwordExpiry } from './password/expiry.ts';
import { AppPasswordService } from './account/app-password.service.ts';
import { AuditLog } from './audit/audit-log.ts';
import { PhoneService } from './mfa/phone.service.ts';
import { OtpCodeStore } from './mfa/otp-code.store.ts';
import { CodeSender } from './mfa/code-sender.ts';
import { mailerFromConfig } from './mail/mailer.ts';
import { RecoveryEmail } from './account/recovery-email.ts';
import { EducationStore } from './education/education.store.ts';
import { EducationService } from './education/education.service.ts';
import { AccountRuleStore } from './access/account-rule.store.ts';
import { AccessService } from './access/access.service.ts';
import { phoneGatewayFromConfig } from './mfa/phone-gateway.ts';
import { Revocations } from './account/revocation.ts';
import { DashboardStore } from './dashboard/dashboard.store.ts';
import { DashboardService } from './dashboard/dashboard.service.ts';
import { IdentityLinkStore } from './idv/identity-link.store.ts';
import { IdentityVerification } from './idv/identity-verification.ts';
import type { Config, IdvSettings } from './config/config.ts';
import { HASH_CENSUS_REFRESH_SECONDS } from './config/defaults.ts';
import { NoticeStore } from './notice/notice.store.ts';
import { Notices } from './notice/notices.ts';
import { noticeMail } from './notice/notice-mail.ts';
import { Metrics } from './metrics/prometheus.ts';

/** Everything the app is built from; tests pass their own database, clock or logger here. */
export interface Deps {
  config: Config;
  database: Database;
  logger: Logger;
  clock: Clock;
  box: SecretBox;
  accounts: AccountStore;
  accountService: AccountService;
  passwordSignin: PasswordSignin;
  signinLog: SigninLog;
  clientStore: ClientStore;
  throttle: LoginThrottle;
  hasher: PasswordHasher;
  payloads: OidcPayloadStore;
  interactionState: InteractionStateStore;
  operators: OperatorStore;
  mfaStore: MfaStore;
  mfa: MfaService;
  tokens: TokenService;
  appPasswords: AppPasswordService;
  audit: AuditLog;
  otpCodes: OtpCodeStore;
  recoveryEmail: RecoveryEmail;
  education: EducationService;
  accountRules: AccountRuleStore;
  access: AccessService;
  idv: IdentityVerification;
  /** The upstream identity provider: configured, or the development stand-in main.ts started. */
  idvSettings: IdvSettings | undefined;
  revocations: Revocations;
  /** The ICT office's figures and their daily snapshot. */
  dashboard: DashboardService;
  helpDesk: HelpDesk;
  /** CSV imports of the console, with their progress and reports. */
  importJobs: ImportJobs;
  /** Notices by mail: the scheduled ones and those of a changed sign-in method. */
  notices: Notices;
  /** This node's Prometheus registry, which the domain counts into (as its Meter). */
  metrics: Metrics;
}

/**
 * In development without AKAMON_SECRET, a random secret is kept in the data directory so that
 * keys encrypted with it survive restarts. Production refuses to start without one (config.ts).
 */
async function resolveSecret(config: Config): Promise<string> {
  if (config.secret) return config.secret;
  const file = path.join(config.dataDir, 'dev-secret');
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    await fs.mkdir(config.dataDir, { recursive: true });
    const secret = randomToken();
    await fs.writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return (await fs.readFile(file, 'utf8')).trim();
  }
}

export async function openConfiguredDatabase(config: Config, logger: Logger): Promise<Database> {
  return openDatabase({
    url: config.databaseUrl,
    dataDir: config.databaseUrl ? undefined : path.join(config.dataDir, 'pglite'),
    onError: (error) => logger.error({ err: error }, 'database connection error'),
  });
}

export async function buildDeps(config: Config, logger: Logger, overrides: { database?: Database; clock?: Clock; schema?: string; idvSettings?: IdvSettings } = {}): Promise<Deps> {
  const database = overrides.database ?? (await openConfiguredDatabase(config, logger));
  const unitOfWork: Database['unitOfWork'] = (work, keep) => database.unitOfWork(work, keep);
  await migrateToLatest(database.db, overrides.schema);
  const db = database.db;
  const clock = overrides.clock ?? systemClock;
  const box = new SecretBox(await resolveSecret(config));
  // One registry per app (tests run several in one process), never prom-client's global one.
  const metrics = new Metrics();
  metrics.watchDatabase(() => database.stats());
  const hashLimiter = new ConcurrencyLimiter(config.hashConcurrency, config.hashQueueLimit);
  metrics.watchHashing(hashLimiter);
  const hasher = new PasswordHasher(config.argon2, hashLimiter);
  const accounts = new AccountStore(db, clock);
  const throttle = new LoginThrottle(db, clock);
  const payloads = new OidcPayloadStore(db);
  const signinLog = new SigninLog(db, metrics);
  const mfaStore = new MfaStore(db);
  const otpCodes = new OtpCodeStore(db);
  const codeSender = new CodeSender({ codes: otpCodes, throttle, key: box.macKey('otp-code') });
  const phone = new PhoneService({ store: mfaStore, sender: codeSender, gateway: phoneGatewayFromConfig(config, logger), box });
  const education = new EducationService({ store: new EducationStore(db), clock, academicYearStart: config.academicYearStart, timeZone: config.timeZone });
  const accountRules = new AccountRuleStore(db);
  const audit = new AuditLog(db);
  const appPasswords = new AppPasswordService({ store: new AppPasswordStore(db), key: box.macKey('app-password'), unitOfWork, audit });
  const accountService = new AccountService({ store: accounts, hasher, profile: config.passwordProfile, sessions: payloads, throttle, unitOfWork, appPasswords });
  const mailer = mailerFromConfig(config, logger);
  const notices = new Notices({ store: new NoticeStore(db), mailer, compose: noticeMail(config), clock, logger, config });
  const mfa = new MfaService({
    store: mfaStore,
    box,
    throttle,
    clock,
    phone,
    rp: { name: config.issuerName, id: new URL(config.issuer).hostname, origin: new URL(config.issuer).origin },
    unitOfWork,
    recordEnrolment: (factor) => audit.record({ actor: 'self', action: 'mfa.enrolled', accountId: factor.account_id, details: { kind: factor.kind, label: factor.label } }),
    meter: metrics,
    onChange: (change) => notices.factorChanged(change),
  });
  const idv = new IdentityVerification({
    links: new IdentityLinkStore(db),
    accounts,
    accountService,
    mfa,
    audit,
    throttle,
    clock,
    salvageDays: config.salvageDays,
    meter: metrics,
    unitOfWork,
  });
  const operators = new OperatorStore(db);
  const tokens = new TokenService({ store: new TokenStore(db), box, meter: metrics, onChange: (change) => notices.factorChanged(change) });
  const revocations = new Revocations({ db, unitOfWork, accounts, accountService, audit, clock, logger });
  const helpDesk = new HelpDesk({ accountService, accounts, mfa, tokens, audit, signinLog, education, revocations, idv, operators, throttle, unitOfWork });
  return {
    config,
    database,
    logger,
    clock,
    box,
    accounts,
    accountService,
    passwordSignin: new PasswordSignin({
      accounts,
      findAccount: async (commonId) => (await mfaStore.accountWithFactorsByCommonId(commonId))?.account,
      hasher,
      census: new HashCensus({ count: () => accounts.hashShapes(), hasher, key: box.macKey('hash-census'), clock, refreshSeconds: HASH_CENSUS_REFRESH_SECONDS }),
      throttle,
      log: signinLog,
      legacy: {
        usesMfa: async (account) => account.mfa_required || (await mfaStore.factors(account.id)).length > 0,
        // As the sign-in's password_change step decides (interaction/steps/password-change.ts).
        mustChangePassword: async (account) =>
          account.must_change_password || passwordExpiry(account.password_set_at, (await mfaStore.factors(account.id)).length > 0, config.passwordExpiry, clock.now()).expired,
        matchesAppPassword: (accountId, candidate) => appPasswords.matches(accountId, candidate),
        // The account's factors came with it (findAccount): what is left is the app password's lookup.
        asForUnknown: async (candidate) => {
          await appPasswords.matches('00000000-0000-0000-0000-000000000000', candidate);
        },
      },
    }),
    signinLog,
    clientStore: new ClientStore(db),
    throttle,
    hasher,
    payloads,
    interactionState: new InteractionStateStore(db),
    operators,
    mfaStore,
    mfa,
    tokens,
    appPasswords,
    audit,
    otpCodes,
    recoveryEmail: new RecoveryEmail({ accounts, sender: codeSender, mailer, throttle }),
    education,
    accountRules,
    access: new AccessService({ lists: accountRules, education, salvageOpen: (account) => idv.salvageOpen(account), clock, rollout: config.mfaRollout }),
    idv,
    idvSettings: overrides.idvSettings ?? config.idv,
    revocations,
    dashboard: new DashboardService({ store: new DashboardStore(db), education, clock, timeZone: config.timeZone }),
    helpDesk,
    importJobs: new ImportJobs({ db, actions: helpDesk, box, audit, clock, logger, timeZone: config.timeZone, principalNow: (principal) => operators.currentPrincipal(principal), unitOfWork }),
    notices,
    metrics,
  };
}
