import type { Config } from '../../config/config.ts';
import type { AccountService } from '../../account/account.service.ts';
import type { AccountStore } from '../../account/account.store.ts';
import type { PasswordSignin } from '../../account/password-signin.ts';
import type { SigninLog } from '../../audit/signin-log.ts';
import type { ClientStore } from '../../client/client.store.ts';
import type { AccessService } from '../../access/access.service.ts';
import type { KnownAccounts } from '../known-accounts.ts';
import type { MfaService } from '../../mfa/mfa.service.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { RecoveryEmail } from '../../account/recovery-email.ts';
import type { AppPasswordService } from '../../account/app-password.service.ts';
import type { AccessDecision } from '../../access/access-rules.ts';
import type { StepRequest } from '../step.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Database } from '../../db/database.ts';
import type { IdvFlow } from '../../idv/idv-flow.ts';
import type { IdentityVerification } from '../../idv/identity-verification.ts';

export interface StepDeps {
  config: Config;
  accounts: AccountStore;
  accountService: AccountService;
  passwordSignin: PasswordSignin;
  clients: ClientStore;
  /** The access rules, for advice that concerns only the systems an account may use. */
  access: AccessService;
  signinLog: SigninLog;
  knownAccounts: KnownAccounts;
  mfa: MfaService;
  audit: AuditLog;
  recoveryEmail: RecoveryEmail;
  appPasswords: AppPasswordService;
  clock: Clock;
  /** One transaction for a change and its audit record (Database#unitOfWork). */
  unitOfWork: Database['unitOfWork'];
  /** Identity verification through the upstream provider, when one is configured. */
  idv: { flow: IdvFlow; verification: IdentityVerification } | undefined;
  /** The access decision for the interaction's account at its client. */
  decide(request: StepRequest): Promise<AccessDecision | undefined>;
  /** The scope whose consent covers a claim asked for in the claims parameter (src/oidc/claims.ts). */
  scopeOfClaim(claim: string): string | undefined;
}
